"""Image history (`history = N`, DESIGN.md "Zoom on demand and image history"): when a chart's
image changes, the previous one is kept as history/NAME/STAMP.png and listed newest first in
history/NAME.json, newest N kept; in `build` and `run` alike, with real processes and files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
from pathlib import Path

import pytest
from conftest import Board, chart, complete_png, fast_board, wait_for, write_data

from renderer.text import iso

STAMP = re.compile(r"history/(?P<name>[a-z0-9_-]+)/(?P<stamp>[0-9]{8}T[0-9]{6}\.[0-9]{3}Z)\.png\Z")


def history_board(root: Path, n: int = 2, extra: str = "") -> Board:
    b = fast_board(root, chart("cpu", inputs="data/cpu.txt", extra=f"history = {n}\n{extra}"),
                   chart("mem", inputs="data/mem.txt"))
    b.data("data/cpu.txt", "1 2 3\n")
    b.data("data/mem.txt", "3 2 1\n")
    return b


def listed(b: Board, name: str = "cpu") -> list[dict]:
    return json.loads((b.output / "history" / f"{name}.json").read_text())


def files(b: Board, name: str = "cpu") -> list[str]:
    folder = b.output / "history" / name
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def stamp_of(rendered_at: str) -> str:
    return rendered_at.replace("-", "").replace(":", "")


def build_ok(b: Board, *args: str) -> None:
    result = b.cli("build", *args)
    assert result.returncode == 0, result.stderr


def check_shape(b: Board, entries: list[dict], name: str = "cpu") -> None:
    """The list's entries are as DESIGN.md says, newest first, each file there, whole and 0644."""
    for e in entries:
        assert set(e) == {"image", "rendered_at", "state"}, e
        m = STAMP.match(e["image"])
        assert m and m["name"] == name and m["stamp"] == stamp_of(e["rendered_at"]), e
        assert e["state"] in ("ok", "stale", "error"), e
        path = b.output / e["image"]
        assert complete_png(path), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
    times = [e["rendered_at"] for e in entries]
    assert times == sorted(times, reverse=True), times


def no_temp_files(b: Board) -> None:
    assert sorted(str(p.relative_to(b.output)) for p in b.output.rglob(".*.tmp")) == []


# -- the board file ----------------------------------------------------------------------------


@pytest.mark.parametrize("value, where, message", [
    ("-1", "charts[0] (cpu).history", "expected 0 to 10000, got -1"),
    ("10001", "charts[0] (cpu).history", "expected 0 to 10000, got 10001"),
    ('"5"', "charts[0] (cpu).history", "expected a whole number 0-10000, got '5'"),
    ("true", "charts[0] (cpu).history", "expected a whole number 0-10000, got True"),
    ("2.5", "charts[0] (cpu).history", "expected a whole number 0-10000, got 2.5"),
    ("[defaults] -3", "defaults.history", "expected 0 to 10000, got -3"),
])
def test_a_bad_history_value_is_one_line_naming_file_chart_and_key_and_exit_2(tmp_path, value, where, message):
    if value.startswith("[defaults]"):
        b = fast_board(tmp_path / "b", chart("cpu", inputs="data/cpu.txt"))
        b.file.write_text(b.file.read_text().replace("[defaults]\n", f"[defaults]\nhistory = {value.split()[1]}\n"))
    else:
        b = fast_board(tmp_path / "b", chart("cpu", inputs="data/cpu.txt", extra=f"history = {value}"))
    b.data("data/cpu.txt", "1 2\n")
    result = b.cli("build")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"plotboard: {b.file.name}: {where}: {message}"] or \
        lines == [f"plotboard: {b.file}: {where}: {message}"], lines
    assert "Traceback" not in result.stderr
    assert not b.output.exists()


def test_history_zero_and_the_upper_bound_are_accepted(tmp_path):
    b = history_board(tmp_path / "b", n=10000)
    build_ok(b)
    assert listed(b) == []
    b.file.write_text(b.file.read_text().replace("history = 10000", "history = 0"))
    build_ok(b)
    assert not (b.output / "history").exists()


# -- build -------------------------------------------------------------------------------------


def test_build_keeps_the_newest_n_previous_images_newest_first_and_deletes_older_ones(tmp_path):
    b = history_board(tmp_path / "b", n=2)
    build_ok(b)
    assert listed(b) == [] and files(b) == []  # nothing replaced yet
    images, times = [], []
    for i in range(4):  # 4 images, 3 changes after the first, then one more
        images.append((b.output / "cpu.png").read_bytes())
        times.append(b.chart("cpu")["rendered_at"])
        write_data(b.root / "data/cpu.txt", [i, 5, i * 2 + 1, 7])
        build_ok(b)
    entries = listed(b)
    check_shape(b, entries)
    # the newest two previous images, newest first; the two oldest deleted
    assert [e["rendered_at"] for e in entries] == [times[3], times[2]]
    assert [(b.output / e["image"]).read_bytes() for e in entries] == [images[3], images[2]]
    assert files(b) == sorted(f"{stamp_of(t)}.png" for t in times[2:])
    assert all(e["state"] == "ok" for e in entries)
    assert (b.output / "cpu.png").read_bytes() not in [images[3], images[2]]
    assert files(b, "mem") == [] and not (b.output / "history" / "mem.json").exists()  # history = 0: none
    assert stat.S_IMODE((b.output / "history" / "cpu.json").stat().st_mode) == 0o644
    no_temp_files(b)


def test_identical_bytes_keep_no_history(tmp_path):
    b = history_board(tmp_path / "b", n=5)
    build_ok(b)
    write_data(b.root / "data/cpu.txt", [1, 2, 3])  # new mtime, same values: the same image
    build_ok(b)
    build_ok(b, "--force")
    assert b.chart("cpu")["renders"] == 3
    assert listed(b) == [] and files(b) == []
    write_data(b.root / "data/cpu.txt", [3, 2, 1])
    build_ok(b)
    assert len(listed(b)) == 1 and len(files(b)) == 1


def test_a_removed_chart_takes_its_history_with_it_and_only_plotboard_s_files_go(tmp_path):
    b = history_board(tmp_path / "b", n=3)
    build_ok(b)
    for i in range(2):
        write_data(b.root / "data/cpu.txt", [i, 9, i])
        build_ok(b)
    assert len(files(b)) == 2
    mine = b.output / "history" / "cpu" / "notes.txt"  # not plotboard's: never deleted
    mine.write_text("mine")
    b.file.write_text(b.file.read_text().replace('name = "cpu"', 'name = "load"'))
    build_ok(b)
    assert files(b) == ["notes.txt"] and not (b.output / "history" / "cpu.json").exists()
    assert listed(b, "load") == []
    mine.unlink()
    mine.parent.rmdir()
    b.file.write_text(b.file.read_text().replace("history = 3", "history = 0"))
    build_ok(b)
    assert not (b.output / "history").exists()


def test_lowering_history_deletes_the_oldest_at_the_next_build(tmp_path):
    b = history_board(tmp_path / "b", n=3)
    build_ok(b)
    for i in range(3):
        write_data(b.root / "data/cpu.txt", [i, 9, i])
        build_ok(b)
    before = listed(b)
    assert len(before) == 3
    b.file.write_text(b.file.read_text().replace("history = 3", "history = 1"))
    build_ok(b)
    assert listed(b) == before[:1] and files(b) == [Path(before[0]["image"]).name]


def test_a_deleted_past_image_is_dropped_from_the_list_and_a_deleted_list_is_written_again(tmp_path):
    b = history_board(tmp_path / "b", n=3)
    build_ok(b)
    for i in range(3):
        write_data(b.root / "data/cpu.txt", [i, 9, i])
        build_ok(b)
    entries = listed(b)
    (b.output / entries[1]["image"]).unlink()
    (b.output / "history" / "cpu.json").unlink()
    result = b.cli("build")
    assert result.returncode == 0 and "0 rendered" in result.stderr, result.stderr
    assert listed(b) == [entries[0], entries[2]]
    (b.output / "history" / "cpu.json").write_text("[]")  # altered: written again
    build_ok(b)
    assert listed(b) == [entries[0], entries[2]]


def test_the_daemon_s_look_sees_a_list_deleted_just_after_it_was_written(tmp_path, monkeypatch):
    """The race `run` lost on a loaded machine: history/NAME.json deleted between the check that
    wrote it and the look that follows; the next look must still write it again."""
    from renderer.board.config import load_board
    from renderer.store import history
    from renderer.store.records import load_state

    b = history_board(tmp_path / "b", n=3)
    build_ok(b)
    for i in range(2):
        write_data(b.root / "data/cpu.txt", [i, 9, i])
        build_ok(b)
    entries = listed(b)
    board = load_board(b.file)
    records = load_state(board)
    watch = history.Watch()
    assert watch.check(board, records) == []  # the first look: all as recorded
    (b.output / entries[1]["image"]).unlink()
    real_check = history.check

    def check_then_someone_deletes_the_list(*args, **kw):
        changed = real_check(*args, **kw)
        (b.output / "history" / "cpu.json").unlink()
        return changed

    monkeypatch.setattr(history, "check", check_then_someone_deletes_the_list)
    assert watch.check(board, records) == ["cpu"]
    monkeypatch.setattr(history, "check", real_check)
    watch.check(board, records)
    assert listed(b) == entries[:1]


def test_windows_keep_their_first_window_s_history_only(tmp_path):
    plots = '''
def by_window(fig, inputs, window=None, window_name=None, **params):
    ax = fig.add_subplot()
    ax.plot([float(v) for v in open(inputs[0]).read().split()])
    ax.set_title(window_name)
'''
    b = fast_board(tmp_path / "b", chart("lat", "plots:by_window", inputs="data/lat.txt",
                                         extra='history = 2\nwindows = { "1h" = "100ms", "1d" = "100ms" }'),
                   plots=plots)
    b.data("data/lat.txt", "1 2 3\n")
    build_ok(b)
    firsts = []
    for i in range(2):
        firsts.append((b.output / "lat.png").read_bytes())
        write_data(b.root / "data/lat.txt", [i, 5, i])
        build_ok(b)
        assert (b.output / "lat.1d.png").read_bytes() != (b.output / "lat.png").read_bytes()
    assert sorted(p.name for p in (b.output / "history").iterdir()) == ["lat", "lat.json"]
    assert [(b.output / e["image"]).read_bytes() for e in listed(b, "lat")] == firsts[::-1]


def test_a_failed_render_keeps_the_image_and_the_next_change_keeps_it_as_error(tmp_path):
    b = history_board(tmp_path / "b", n=2)
    build_ok(b)
    first = (b.output / "cpu.png").read_bytes()
    write_data(b.root / "data/cpu.txt", [])
    (b.root / "data/cpu.txt").write_text("not numbers\n")
    assert b.cli("build").returncode == 1
    assert listed(b) == []  # a failed render replaces nothing
    write_data(b.root / "data/cpu.txt", [4, 1, 4])
    build_ok(b)
    (entry,) = listed(b)
    assert entry["state"] == "error" and (b.output / entry["image"]).read_bytes() == first


def test_bookkeeping_naming_files_plotboard_did_not_keep_never_deletes_them(tmp_path):
    b = history_board(tmp_path / "b", n=2)
    build_ok(b)
    foreign = b.output / "history" / "cpu" / "20200101T000000.000Z.png"
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_bytes(b"someone else's")
    state = b.root / ".plotboard" / "state.json"
    data = json.loads(state.read_text())
    data["charts"]["cpu"]["history"] = [["20200101T000000.000Z.png", 1577836800.0, "ok", 14, 1]]  # a wrong stamp
    state.write_text(json.dumps(data))
    b.file.write_text(b.file.read_text().replace("history = 2", "history = 0"))
    build_ok(b)
    assert foreign.read_bytes() == b"someone else's"
    data["charts"]["cpu"]["history"] = [["../../cpu.png", 1.0, "ok", 1, 1]]  # not a name it writes
    state.write_text(json.dumps(data))
    result = b.cli("build")
    assert result.returncode == 0 and "ignored invalid bookkeeping" in result.stderr, result.stderr
    assert (b.output / "cpu.png").is_file() and foreign.is_file()


def test_a_planted_symlink_is_never_written_through(tmp_path):
    b = history_board(tmp_path / "b", n=2)
    build_ok(b)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(b.output / "history")
    (b.output / "history").symlink_to(elsewhere)
    write_data(b.root / "data/cpu.txt", [7, 1, 7])
    build_ok(b)
    assert list(elsewhere.iterdir()) == []
    assert (b.output / "history").is_dir() and not (b.output / "history").is_symlink()
    assert len(listed(b)) == 1


# -- run ---------------------------------------------------------------------------------------


def test_run_keeps_history_drops_deleted_past_images_and_a_reload_removing_the_chart_deletes_it(tmp_path, daemons):
    b = history_board(tmp_path / "b", n=2)
    d = daemons(b)
    seen = [d.wait_state("cpu", state="ok")["hash"]]
    images = [d.image("cpu")]
    for i in range(3):
        write_data(b.root / "data/cpu.txt", [i, 8, i * 3, 1])
        images.append(d.new_image("cpu", images[-1]))
        seen.append(wait_for(lambda: (h := d.state("cpu").get("hash")) != seen[-1] and h, 60, "the new hash"))
    entries = wait_for(lambda: (e := _listed_or_none(b)) and len(e) == 2 and e, 60, "two past images")
    check_shape(b, entries)
    assert [(b.output / e["image"]).read_bytes() for e in entries] == [images[2], images[1]]
    assert len(files(b)) == 2  # the oldest was deleted
    (b.output / entries[0]["image"]).unlink()
    wait_for(lambda: _listed_or_none(b) == entries[1:], 60, "the deleted past image to leave the list")
    (b.output / "history" / "cpu.json").unlink()
    wait_for(lambda: _listed_or_none(b) == entries[1:], 60, "the deleted list to be written again")
    write_data(b.root / "data/cpu.txt", [5, 5, 0, 5])
    d.new_image("cpu", images[-1])
    newest = wait_for(lambda: (e := _listed_or_none(b)) and len(e) == 2 and e, 60, "two past images again")
    b.file.write_text(b.file.read_text().replace("history = 2", "history = 1"))
    d.send(signal.SIGHUP)
    wait_for(lambda: _listed_or_none(b) == newest[:1] and len(files(b)) == 1, 60, "history lowered to 1")
    b.file.write_text(b.file.read_text().replace('name = "cpu"', 'name = "load"'))
    d.send(signal.SIGHUP)
    wait_for(lambda: files(b) == [] and not (b.output / "history" / "cpu.json").exists(), 60,
             "the removed chart's history to go")
    wait_for(lambda: _listed_or_none(b, "load") == [], 60, "the new chart's empty list")
    assert d.stop() == 0
    no_temp_files(b)
    build = b.cli("build")  # run and build share the bookkeeping: nothing left to do
    assert build.returncode == 0 and "0 rendered" in build.stderr, build.stderr


def _listed_or_none(b: Board, name: str = "cpu") -> list[dict] | None:
    try:
        return listed(b, name)
    except (OSError, ValueError):
        return None


def test_past_images_are_kept_as_hard_links_not_copies(tmp_path):
    b = history_board(tmp_path / "b", n=2)
    build_ok(b)
    inode = (b.output / "cpu.png").stat().st_ino
    write_data(b.root / "data/cpu.txt", [9, 1, 9])
    build_ok(b)
    (entry,) = listed(b)
    assert (b.output / entry["image"]).stat().st_ino == inode  # the very file that was served
    assert entry["rendered_at"] == iso(json.loads((b.root / ".plotboard" / "state.json").read_text())
                                       ["charts"]["cpu"]["history"][0][1])
