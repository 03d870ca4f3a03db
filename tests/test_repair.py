"""Self-repair (DESIGN.md, "Ownership and self-repair"): published files that are deleted or
altered come back, at the next build and within seconds under run, re-rendering only what was
damaged; a chart whose image is missing is never reported ok."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import urllib.request

from conftest import remove_tree, chart, fast_board, wait_for, write_data

from renderer.daemon.pagekeeper import PageBatcher
from renderer.daemon.watch import Watcher


def rendered_count(result) -> tuple[int, int, int]:
    line = next(l for l in result.stderr.splitlines() if "build: " in l)
    words = line.split("build: ", 1)[1].split()
    return int(words[0]), int(words[2]), int(words[4])


def test_a_deleted_output_folder_is_restored_by_the_next_build(built):
    shutil.rmtree(built.output)
    result = built.cli("build")
    assert result.returncode == 0, result.stderr
    assert rendered_count(result) == (2, 0, 0)
    for name in ("a.png", "b.png", "index.html", "status.json", "static/board.css", "static/board.js"):
        assert (built.output / name).is_file(), name
    assert built.cli("status").returncode == 0


def test_an_altered_image_is_rendered_again_alone(built):
    good = (built.output / "a.png").read_bytes()
    (built.output / "a.png").write_bytes(b"not a png")
    result = built.cli("build")
    assert rendered_count(result) == (1, 0, 1), result.stderr
    assert (built.output / "a.png").read_bytes() == good
    again = built.cli("build")
    assert rendered_count(again) == (0, 0, 2), again.stderr  # repaired once, then left alone


def test_an_image_a_crash_of_the_machine_left_empty_is_rendered_again(built):
    # Images are not fsynced (renderer.store.publish): after a power loss one may be empty, its
    # rename kept and its data lost; its recorded stamp tells, even with the mtime it had.
    path = built.output / "b.png"
    good, st = path.read_bytes(), path.stat()
    path.write_bytes(b"")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = built.cli("build")
    assert rendered_count(result) == (1, 0, 1), result.stderr
    assert path.read_bytes() == good


def test_deleted_or_altered_pages_are_rewritten_without_rendering(built):
    (built.output / "index.html").unlink()
    (built.output / "status.json").write_text("{}")
    result = built.cli("build")
    assert rendered_count(result) == (0, 0, 2), result.stderr
    assert "Chart A" in (built.output / "index.html").read_text()
    assert [c["name"] for c in built.status()["charts"]] == ["a", "b"]


def test_status_names_an_image_that_is_missing(built):
    assert built.cli("status").returncode == 0
    (built.output / "b.png").unlink()
    result = built.cli("status")
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith("PLOTBOARD CRITICAL - b error (ImageMissing: b.png")
    assert len(result.stdout.strip().splitlines()) == 1


def test_run_with_serve_restores_a_deleted_output_folder_and_never_reports_a_missing_image_ok(tmp_path, daemons):
    board = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"), chart("b", inputs="data/b.txt"))
    board.data("data/a.txt", "1 2 3\n")
    board.data("data/b.txt", "3 2 1\n")
    d = daemons(board, "--serve", "0")
    d.wait_state("a", state="ok")
    d.wait_state("b", state="ok")
    remove_tree(board.output)
    names = ["a.png", "b.png"]

    def restored() -> bool:
        result = board.cli("status", timeout=60)
        present = [n for n in names if (board.output / n).is_file()]  # images only ever appear
        assert result.returncode != 0 or present == names, f"status said OK with {present}: {result.stdout}"
        try:
            manifest = json.loads((board.output / "status.json").read_text())
        except (OSError, ValueError):
            return False
        for entry in manifest["charts"]:
            if entry["state"] == "ok":
                assert (board.output / entry["image"]).is_file(), f"{entry['name']} ok without its image"
        return result.returncode == 0 and (board.output / "index.html").is_file()

    wait_for(restored, 60, "the daemon to restore the output folder", interval=0.2)
    assert d.proc.poll() is None  # no restart
    url = re.search(r"serving .* on (http://127\.0\.0\.1:\d+/)", d.log).group(1)
    for name in ("index.html", "status.json", "a.png", "b.png", "static/board.js"):
        with urllib.request.urlopen(url + name, timeout=30) as response:
            assert response.status == 200 and response.read(), name
    assert d.stop() == 0


def test_a_theme_change_re_renders_every_chart_on_reload(tmp_path, daemons):
    board = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"))
    board.data("data/a.txt", "1 2 3\n")
    d = daemons(board)
    d.wait_state("a", state="ok", renders=1)
    light = d.image("a")
    board.file.write_text(board.file.read_text().replace('[board]\n', '[board]\ntheme = "dark"\n', 1))
    d.send(signal.SIGHUP)
    d.wait_state("a", state="ok", renders=2)
    assert d.image("a") != light
    assert d.stop() == 0


def test_files_no_chart_reads_never_wake_the_loop(tmp_path):
    """A log file beside the inputs (`plotboard run > run.log`) is written often; only the
    input's event may reach the daemon."""
    (tmp_path / "data.txt").write_text("1\n")
    wakes: list[int] = []
    recorded: list = []  # every change the watcher handed over

    def input_seen() -> bool:
        recorded.extend(watcher.take())
        return any(c.path.endswith("/data.txt") for c in recorded)

    with Watcher(lambda: wakes.append(1), wanted=lambda path: path.endswith("/data.txt")) as watcher:
        watcher.watch({str(tmp_path): False})
        with open(tmp_path / "run.log", "w") as log:
            for i in range(200):
                log.write(f"line {i}\n")
                log.flush()
        write_data(tmp_path / "data.txt", [2])  # events arrive in order: the log's came first
        wait_for(input_seen, 60, "the input's event")
    recorded.extend(watcher.take())
    assert [c.path for c in recorded if not c.path.endswith("/data.txt")] == []
    # Each wake-up hands over at least one change: none was for the log's events.
    assert 1 <= len(wakes) <= len(recorded), (len(wakes), recorded)


def test_a_failed_page_write_waits_for_its_retry_even_when_renders_are_at_rest():
    pages = PageBatcher(retry=1.0)
    pages.dirty(100.0)
    pages.wrote(100.0)
    pages.failed(100.0)
    assert not pages.should_write(100.1, at_rest=True, stale_at=None)
    pages.urgent(100.2)  # a reload: still not before the retry time
    assert not pages.should_write(100.5, at_rest=True, stale_at=None)
    assert pages.should_write(101.0, at_rest=True, stale_at=None)
