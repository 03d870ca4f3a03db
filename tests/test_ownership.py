"""One writer per board, and no command that waits without bound (DESIGN.md, "Ownership and
self-repair"): the board lock survives `rm -rf .plotboard`, a build hands its work to a running
daemon, and a daemon waiting for a build survives signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import remove_tree, Board, chart, cli_env, fast_board, wait_for, write_data

HOLD = '''
import os
import time

def line(fig, inputs, **params):
    ax = fig.add_subplot()
    for path in inputs:
        ax.plot([float(v) for v in open(path).read().split()])

def boom(fig, inputs, **params):
    raise ValueError("plot exploded")

def held(fig, inputs, **params):
    """Renders once the file params["release"] exists (at most a minute)."""
    open(params["started"], "w").close()
    deadline = time.time() + 60
    while not os.path.exists(params["release"]) and time.time() < deadline:
        time.sleep(0.01)
    fig.add_subplot().plot([1, 2, 3])
'''


def catches(pid: int, sig: int) -> bool:
    """Whether the process has a handler for `sig` (SigCgt in /proc/PID/status)."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return False
    mask = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(mask >> (sig - 1) & 1)


def held_board(tmp_path) -> tuple[Board, Path, Path]:
    """A board whose one chart renders once the test creates the file `release`."""
    started, release = tmp_path / "started", tmp_path / "release"
    board = fast_board(tmp_path / "b", chart("h", plot="plots:held",
                                             extra=f'params = {{ started = "{started}", release = "{release}" }}'),
                       plots=HOLD)
    return board, started, release


def owned_board(tmp_path) -> Board:
    board = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"), chart("bad", plot="plots:boom"), plots=HOLD)
    board.data("data/a.txt", "1 2 3\n")
    return board


def test_a_second_run_is_refused_also_after_plotboard_dir_was_deleted(tmp_path, daemons):
    board = owned_board(tmp_path)
    first = daemons(board)
    first.wait_state("a", state="ok")
    remove_tree(board.root / ".plotboard")  # as git clean -fdX or a tmp cleaner would

    second = board.cli("run", timeout=60)
    assert second.returncode == 1, second.stderr
    assert f"plotboard run (pid {first.proc.pid})" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1

    before = first.image("a")
    write_data(board.root / "data/a.txt", [3, 2, 1])
    first.new_image("a", before, timeout=30, what="the first daemon to keep rendering")
    wait_for(lambda: (board.root / ".plotboard/lock").is_file(), 30, "the first daemon to rewrite .plotboard/lock")
    assert first.stop() == 0


def test_a_build_while_run_owns_the_board_is_done_by_the_daemon(tmp_path, daemons):
    board = owned_board(tmp_path)
    d = daemons(board)
    d.wait_state("a", state="ok", renders=1)
    d.wait_state("bad", state="error", failures=1)

    quiet = board.cli("build", "--only", "a", timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    assert f"build: 0 rendered, 0 failed, 1 up to date (done by plotboard run (pid {d.proc.pid}))" in quiet.stderr

    forced = board.cli("build", "--force", timeout=60)
    assert forced.returncode == 1, forced.stderr  # "bad" failed again
    assert "build: 1 rendered, 1 failed, 0 up to date (done by plotboard run" in forced.stderr
    # The daemon rendered both again and wrote the pages before it answered.
    assert board.chart("a")["renders"] == 2  # "bad" may have had backoff retries meanwhile: at least
    assert board.chart("bad")["failures"] >= 2

    unknown = board.cli("build", "--only", "nope", timeout=60)
    assert unknown.returncode == 2 and "no chart named nope" in unknown.stderr
    assert d.stop() == 0


def test_a_run_waiting_for_a_build_survives_signals_and_takes_over(tmp_path):
    board, started, release = held_board(tmp_path)
    build = subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(board.file)],
                             env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        try:
            wait_for(started.exists, 60, "the build's render")
            run = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board.file)],
                                   env=cli_env(), stdout=log, stderr=subprocess.STDOUT)
            # As soon as it catches SIGHUP (its first statements do), long before it has the board.
            wait_for(lambda: catches(run.pid, signal.SIGHUP), 60, "the run to catch SIGHUP")
            run.send_signal(signal.SIGHUP)
            wait_for(lambda: "waiting for plotboard build" in log_path.read_text(), 60, "the run to wait")
            run.send_signal(signal.SIGHUP)  # while it waits
            assert run.poll() is None, log_path.read_text()
            release.touch()
            assert build.wait(60) == 0, build.stderr.read()
            wait_for(lambda: "run: 1 chart," in log_path.read_text() or run.poll() is not None, 60,
                     "the run to start")
            assert run.poll() is None, log_path.read_text()
            run.send_signal(signal.SIGTERM)
            assert run.wait(60) == 0, log_path.read_text()
        finally:
            for proc in (build, locals().get("run")):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
    assert "Traceback" not in log_path.read_text()


def test_sigterm_while_waiting_for_a_build_stops_the_run_cleanly(tmp_path):
    board, started, release = held_board(tmp_path)
    build = subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(board.file)],
                             env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = tmp_path / "run.log"
    run = None
    try:
        wait_for(started.exists, 60, "the build's render")
        with open(log_path, "w") as log:
            run = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board.file)],
                                   env=cli_env(), stdout=subprocess.DEVNULL, stderr=log)
        wait_for(lambda: "waiting for plotboard build" in log_path.read_text() or run.poll() is not None, 60,
                 "the run to say it waits for the build")
        assert run.poll() is None, log_path.read_text()
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 0, log_path.read_text()
        assert build.poll() is None  # the build was not disturbed
    finally:
        release.touch()
        build.wait(60)
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
    assert "Traceback" not in log_path.read_text()
