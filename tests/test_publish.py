"""Publishing into the output folder: atomic replacement under a concurrent reader, modes,
unchanged files left alone, leftover temporary files, and deleting only plotboard's own files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from renderer.errors import PublishError
from renderer.render.files import TEMP_RE, Staged, stage
from renderer.store.publish import LEFTOVER_AFTER, remove_leftovers, write_many


# Reads PATH as fast as it can until STOP exists; reports every distinct content's digest, how
# many reads were not a whole PNG, and the modes seen. Runs as its own process, so it is truly
# concurrent with the writer.
READER = r'''
import hashlib, json, os, sys
path, stop = sys.argv[1], sys.argv[2]
reads = broken = missing = 0
digests, modes = set(), set()
print("ready", flush=True)
while not os.path.exists(stop):
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        missing += 1
        continue
    try:
        modes.add(os.fstat(fd).st_mode & 0o7777)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    reads += 1
    if not (data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")):
        broken += 1
    digests.add(hashlib.sha256(data).hexdigest())
print(json.dumps({"reads": reads, "broken": broken, "missing": missing,
                  "digests": sorted(digests), "modes": sorted(modes)}), flush=True)
'''


class Reader:
    """The reader process, started on a file that already exists."""

    def __init__(self, path, stop) -> None:
        self.stop = stop
        self.proc = subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def finish(self) -> dict:
        self.stop.write_text("")
        out, _ = self.proc.communicate(timeout=30)
        return json.loads(out)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_reader_never_sees_a_torn_png_during_300_replacements(built, tmp_path, umask022):
    from renderer.store.publish import write_atomic

    out = tmp_path / "public"
    out.mkdir()
    pngs = [(built.output / name).read_bytes() for name in ("a.png", "b.png")]  # real renders
    assert len(pngs[0]) != len(pngs[1])
    assert write_atomic(out, "a.png", pngs[1])
    reader = Reader(out / "a.png", tmp_path / "stop")
    try:
        changed = [write_atomic(out, "a.png", pngs[i % 2]) for i in range(300)]
    finally:
        seen = reader.finish()
    assert all(changed), "every alternate version must be a real replacement"
    assert seen["broken"] == 0 and seen["missing"] == 0, seen
    assert set(seen["digests"]) <= {digest(p) for p in pngs}, "a read matched neither version"
    assert len(seen["digests"]) == 2, f"the reader never saw both versions: {seen}"
    assert seen["reads"] > 0 and seen["modes"] == [0o644]
    assert not [p for p in out.iterdir() if p.name != "a.png"], "temporary files left behind"


def test_reader_never_sees_a_torn_png_during_cli_builds(built, umask022):
    board = built
    old = (board.output / "a.png").read_bytes()
    reader = Reader(board.output / "a.png", board.root / "stop")
    try:
        board.data("data/a.txt", "0 1 2 3 4\n")
        result = board.cli("build", "--only", "a")
        assert result.returncode == 0, result.stderr
        new = (board.output / "a.png").read_bytes()
    finally:
        seen = reader.finish()
    versions = {digest(old), digest(new)}
    assert len(versions) == 2
    assert seen["broken"] == 0 and seen["missing"] == 0, seen
    assert set(seen["digests"]) <= versions, "a read matched no published version"
    assert seen["modes"] == [0o644]


def test_every_published_file_is_world_readable(board, umask022):
    assert board.cli("build").returncode == 0
    files = [p for p in board.output.rglob("*") if p.is_file()]
    assert {p.relative_to(board.output).as_posix() for p in files} >= {"a.png", "b.png", "index.html", "status.json"}
    assert any(p.parent.name == "static" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_unchanged_image_is_not_rewritten(built):
    board = built
    before = {name: os.stat(board.output / name) for name in ("a.png", "static/board.css")}
    first = board.chart("a")
    assert board.cli("build", "--force").returncode == 0
    for name, st in before.items():
        now = os.stat(board.output / name)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), f"{name} was rewritten"
    again = board.chart("a")
    assert again["renders"] == 2 and again["rendered_at"] > first["rendered_at"]
    assert again["changed_at"] == first["changed_at"] and again["hash"] == first["hash"]


def test_changed_image_updates_changed_at_and_hash(built):
    board = built
    first = board.chart("a")
    board.data("data/a.txt", "5 4 3 2 1 0\n")
    assert board.cli("build").returncode == 0
    again = board.chart("a")
    assert again["changed_at"] > first["changed_at"] and again["hash"] != first["hash"]


def test_leftover_temporary_files_are_removed_at_start(built):
    board = built
    leftovers = [board.output / ".a.png.0badf00d.tmp", board.output / "static/.board.css.12345678.tmp",
                 board.root / ".plotboard/.state.json.abcdef01.tmp"]
    for p in leftovers:
        p.write_bytes(b"half a file")
    assert board.cli("build").returncode == 0
    assert [p for p in leftovers if p.exists()] == []


def test_leftover_temporary_files_in_status_and_groups_are_removed_at_start(built, tmp_path):
    """A writer killed while writing status/ID.json or groups/ID.html leaves its hidden temporary
    file there: swept at the next start like the output folder's own; a planted link to another
    folder is not followed."""
    board = built
    (board.output / "groups").mkdir(exist_ok=True)
    leftovers = [board.output / "status/.index.json.0badf00d.tmp", board.output / "groups/.web.html.12345678.tmp"]
    for p in leftovers:
        p.write_bytes(b"half a file")
    assert board.cli("build").returncode == 0
    assert [p for p in leftovers if p.exists()] == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    theirs = elsewhere / ".web.html.12345678.tmp"
    theirs.write_text("keep")
    shutil.rmtree(board.output / "groups")
    (board.output / "groups").symlink_to(elsewhere, target_is_directory=True)
    assert board.cli("build").returncode == 0
    assert theirs.read_text() == "keep"


def test_files_plotboard_did_not_write_are_kept(built):
    board = built
    page = (board.output / "index.html").read_text()
    assert 'data-name="a"' in page and 'data-name="b"' in page  # how the page marks a chart's card
    mine = {"notes.txt": "keep me", ".keep.tmp": "a user's hidden file", "zz.png": "not a chart"}
    for name, text in mine.items():
        (board.output / name).write_text(text)
    # chart b leaves the board: its image goes, nothing else
    board.write(board.file.read_text().split("[[charts]]\nname = \"b\"")[0])
    assert board.cli("build").returncode == 0
    assert not (board.output / "b.png").exists()
    assert (board.output / "a.png").exists()
    for name, text in mine.items():
        assert (board.output / name).read_text() == text, name
    page = (board.output / "index.html").read_text()
    assert 'data-name="a"' in page and 'data-name="b"' not in page and "b.png" not in page
    assert [c["name"] for c in board.status()["charts"]] == ["a"]


def test_files_a_chart_no_longer_makes_are_deleted(board):
    board.write(board.file.read_text().replace("hidpi = false", "hidpi = true"))
    assert board.cli("build").returncode == 0
    assert (board.output / "a@2x.png").exists()
    board.write(board.file.read_text().replace("hidpi = true", "hidpi = false"))
    assert board.cli("build").returncode == 0
    assert not (board.output / "a@2x.png").exists() and not (board.output / "b@2x.png").exists()
    assert (board.output / "a.png").exists()


def test_nothing_but_plotboard_files_is_written_to_the_output(built):
    board = built
    names = {p.relative_to(board.output).as_posix() for p in board.output.rglob("*")}
    static = {n for n in names if n.startswith(("static/", "status/"))}
    assert names - static == {"a.png", "b.png", "index.html", "status.json", "static", "status"}
    assert {n for n in static if n.startswith("status/")} == {"status/index.json", "status/ungrouped.json"}
    assert not [n for n in static if n.rsplit("/", 1)[-1].startswith(".")]
    assert (board.root / ".plotboard/state.json").is_file()


def test_a_render_process_stages_its_files_and_publishing_only_renames_them(tmp_path):
    """renderer.render.files.stage: the bytes go to hidden temporary files next to their targets
    (none for a target holding the same bytes); where that cannot be done nothing is left and
    the bytes come back for the daemon to write, as before."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "same.png").write_bytes(b"same")
    staged = stage(str(out), {"new.png": b"new", "same.png": b"same"})
    assert staged["same.png"] == Staged(None) and isinstance(staged["new.png"], Staged)
    assert (out / staged["new.png"].temp).read_bytes() == b"new" and TEMP_RE.match(staged["new.png"].temp)
    assert write_many(out, staged) == ["new.png"]
    assert sorted(os.listdir(out)) == ["new.png", "same.png"]
    files = {"a.png": b"a", "../b.png": b"b"}  # a name that would leave the folder: nothing staged
    assert stage(str(out), files) is files and sorted(os.listdir(out)) == ["new.png", "same.png"]
    assert stage(str(tmp_path / "gone"), {"a.png": b"a"}) == {"a.png": b"a"}
    with pytest.raises(PublishError, match="not a temporary file"):
        write_many(out, {"x.png": Staged("same.png")})
    assert (out / "same.png").read_bytes() == b"same" and not (out / "x.png").exists()


def test_leftover_staged_files_are_deleted_once_old_and_only_those(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old = stage(str(out), {"a.png": b"a"})["a.png"].temp
    young = stage(str(out), {"b.png": b"b"})["b.png"].temp
    long_ago = time.time() - LEFTOVER_AFTER - 60
    (out / ".notes.tmp").touch()  # a user's hidden file, not a name plotboard makes
    (out / "user.tmp").touch()
    for name in (old, ".notes.tmp", "user.tmp"):
        os.utime(out / name, (long_ago, long_ago))
    os.symlink("/etc/hostname", out / ".link.png.0123abcd.tmp")
    assert remove_leftovers(out, os.listdir(out)) == [old]
    assert sorted(os.listdir(out)) == sorted([young, ".notes.tmp", "user.tmp", ".link.png.0123abcd.tmp"])
