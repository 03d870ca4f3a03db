"""A data file rewritten with other bytes of the same size within one tick of the file system's
clock keeps its size and mtime: `build` and the daemon's periodic check still see the change
(an input whose mtime was recent when its fingerprint was taken is "racy", and its bytes are
compared until it is old enough for its stat to tell). A board copied back with its bookkeeping
(cp -a, same paths, same mtimes) renders nothing again."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import chart, fast_board

# An mtime no check can be 2 s past however loaded the machine: the input stays racy for the
# whole test, as a file written just before its fingerprint was taken is for a moment.
AHEAD_NS = 3600 * 1_000_000_000


def rewrite_same_size_same_mtime(path: Path, text: str) -> None:
    st = os.stat(path)
    assert len(text.encode()) == st.st_size
    with open(path, "r+") as f:  # in place: the same inode, as a writer that truncates and writes
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def racy_board(root: Path):
    b = fast_board(root, chart("a", inputs="data/a.txt"))
    path = b.data("data/a.txt", "1 2 3\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, time.time_ns() + AHEAD_NS))
    return b, path


def test_build_sees_a_same_size_rewrite_with_the_same_mtime(tmp_path):
    b, path = racy_board(tmp_path / "b")
    assert b.cli("build").returncode == 0
    first = b.chart("a")["hash"]
    rewrite_same_size_same_mtime(path, "3 2 1\n")
    result = b.cli("build")
    assert result.returncode == 0 and "1 rendered" in result.stderr, result.stderr
    assert b.chart("a")["hash"] != first
    result = b.cli("build")  # and once rendered, it is up to date again
    assert "0 rendered" in result.stderr and "1 up to date" in result.stderr, result.stderr


def test_the_daemons_check_sees_a_same_size_rewrite_no_event_reported(tmp_path, daemons):
    b, path = racy_board(tmp_path / "b")
    b.file.write_text(b.file.read_text().replace("[board]\n", '[board]\ncheck_every = "1s"\n'))
    d = daemons(b, "--poll")  # polling compares sizes and mtimes: it reports no event for this rewrite
    d.wait_state("a", state="ok", renders=1)
    before = d.image("a")
    rewrite_same_size_same_mtime(path, "3 2 1\n")
    d.new_image("a", before, timeout=60)
    assert "a change no file event reported" in d.log


def test_a_board_copied_back_with_its_bookkeeping_renders_nothing(tmp_path):
    b, path = racy_board(tmp_path / "b")
    assert b.cli("build").returncode == 0
    aside = tmp_path / "aside"
    subprocess.run(["cp", "-a", str(b.root), str(aside)], check=True)
    shutil.rmtree(b.root)
    subprocess.run(["cp", "-a", str(aside), str(b.root)], check=True)  # new inodes and ctimes, same mtimes
    result = b.cli("build")
    assert result.returncode == 0 and "0 rendered" in result.stderr, result.stderr


def test_racy_bytes_are_compared_until_a_check_past_the_window_settles_them(tmp_path, monkeypatch):
    from renderer.board.config import load_board
    from renderer.store import fingerprints
    from renderer.store.records import ChartRecord

    b = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"))
    path = b.data("data/a.txt", "1 2 3\n")
    mtime = os.stat(path).st_mtime_ns
    board = load_board(b.file)
    a = board.chart("a")
    now = [mtime + 1_000_000_000]  # 1 s after the write: racy
    monkeypatch.setattr(fingerprints, "clock_ns", lambda: now[0])

    def current():
        return fingerprints.fingerprint(board, a, fingerprints.expand_inputs(a))

    record = ChartRecord(fingerprint=str(current()))
    assert "~" in record.fingerprint
    rewrite_same_size_same_mtime(path, "3 2 1\n")
    assert not fingerprints.holds(record, current())
    rewrite_same_size_same_mtime(path, "1 2 3\n")
    now[0] = mtime + 1_500_000_000
    assert fingerprints.holds(record, current()) and "~" in record.fingerprint  # still racy: kept as it was
    now[0] = mtime + 2_500_000_000  # past the window with the same bytes: settled
    assert fingerprints.holds(record, current()) and "~" not in record.fingerprint
    reads = []
    monkeypatch.setattr(fingerprints, "digest_file", lambda *args: reads.append(args) or "x")
    assert fingerprints.holds(record, current()) and not reads  # from now on the stat alone tells
    path.write_text("1 2 3 4\n")
    assert not fingerprints.holds(record, current())


def test_charts_sharing_a_racy_input_read_it_once_and_a_check_past_the_window_reads_it_afresh(tmp_path, monkeypatch):
    from renderer.board.config import load_board
    from renderer.store import fingerprints
    from renderer.store.records import ChartRecord

    b = fast_board(tmp_path / "b", *(chart(f"c{i}", inputs="data/shared.txt") for i in range(3)))
    path = b.data("data/shared.txt", "1 2 3\n")
    mtime = os.stat(path).st_mtime_ns
    board = load_board(b.file)
    now, ticks = [mtime + 1_000_000_000], [100.0]
    monkeypatch.setattr(fingerprints, "clock_ns", lambda: now[0])
    monkeypatch.setattr(fingerprints, "monotonic", lambda: ticks[0])
    reads = []
    real = fingerprints.digest_file
    monkeypatch.setattr(fingerprints, "digest_file", lambda *args: reads.append(args) or real(*args))

    def current(c):
        return fingerprints.fingerprint(board, c, fingerprints.expand_inputs(c))

    records = {c.name: ChartRecord(fingerprint=str(current(c))) for c in board.charts}
    assert len(reads) == 1  # three charts, one read
    rewrite_same_size_same_mtime(path, "3 2 1\n")
    ticks[0] += 1.0
    now[0] = mtime + 2_500_000_000  # past the window: the check reads it afresh, sees the change, settles nothing
    assert not any(fingerprints.holds(records[c.name], current(c)) for c in board.charts)
    assert all("~" in r.fingerprint for r in records.values())
