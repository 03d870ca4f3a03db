"""What a person sees: `build`'s progress line in a terminal (plain log lines in a pipe), and the
daemon's summary of its renders instead of a line per render."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from conftest import chart, cli_env, fast_board
from fakeclock import Clock

from renderer.daemon.progress import Progress, RenderSummary


def many_charts(tmp_path, n: int = 6):
    board = fast_board(tmp_path / "b", *(chart(f"c{i}", inputs="data/x.txt") for i in range(n)))
    board.data("data/x.txt", "1 2 3\n")
    return board


def test_build_in_a_terminal_shows_progress_instead_of_a_line_per_chart(tmp_path):
    board = many_charts(tmp_path)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(board.file)],
                            env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(120) == 0
    text = out.decode()
    assert "\rrendering 6/6" in text
    assert "rendered c0 trigger=" not in text  # no line per chart
    assert "build: 6 rendered, 0 failed, 0 up to date" in text


def test_build_in_a_pipe_writes_plain_log_lines(tmp_path):
    board = many_charts(tmp_path)
    result = board.cli("build")
    assert result.returncode == 0
    assert "\r" not in result.stderr and "\033" not in result.stderr
    assert result.stderr.count(" rendered c") == 6


def test_progress_says_what_is_left():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(4, stream=stream, clock=clock)
    clock.advance(2.0)
    progress.advance(ok=True)
    assert progress.text() == "rendering 1/4, ~6 s left"
    clock.advance(2.0)
    progress.advance(ok=False)
    assert progress.text() == "rendering 2/4, 1 failed, ~4 s left"
    assert stream.getvalue().startswith("\rrendering 1/4")
    progress.clear()
    assert stream.getvalue().endswith("\r\033[K")


def test_the_daemon_sums_up_its_renders_at_most_every_ten_seconds():
    summary = RenderSummary(every=10.0)
    assert summary.line(100.0) is None  # nothing rendered
    for i in range(4):  # the demo: four charts a second
        summary.add(100.0 + i * 0.25, ok=True, changed=i % 2 == 0)
    assert summary.line(101.0) == "rendered 4 charts (2 changed), 0 failed in the last 1.0 s"
    summary.add(102.0, ok=False, changed=False)
    assert summary.line(105.0) is None  # too soon after the last line
    summary.add(106.0, ok=True, changed=True)
    assert summary.line(111.0) == "rendered 1 chart (1 changed), 1 failed in the last 9.0 s"
    summary.add(112.0, ok=True, changed=False)
    assert summary.line(113.0, force=True) is not None  # at shutdown


def test_run_logs_no_line_per_render_by_default(tmp_path, daemons):
    board = many_charts(tmp_path)
    d = daemons(board)
    for i in range(6):
        d.wait_state(f"c{i}", state="ok")
    assert d.stop() == 0
    assert " rendered c0 trigger=" not in d.log
    assert "rendered 6 charts (6 changed), 0 failed" in d.log
