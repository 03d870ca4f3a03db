"""The daemon's guard and thread deaths: an unexpected error is logged with its traceback and
ends `run` with a non-zero status (so a supervisor restarts it), any thread's death goes to
the plotboard logger, and the death of a thread the daemon depends on stops it with status 1
(a `build` whose pool dies exits 1 instead of waiting)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading

import pytest
from conftest import TWO_CHARTS, TWO_CHARTS_DATA, Board, cli_env
from daemon_helpers import with_fault

from renderer import cli as cli_module
from renderer import threads
from renderer.daemon import loop as daemon


@pytest.fixture
def records():
    """The plotboard logger's records (it does not propagate to pytest's caplog)."""
    got: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = got.append
    logger = logging.getLogger("plotboard")
    logger.addHandler(handler)
    yield got
    logger.removeHandler(handler)


def test_an_unexpected_error_in_the_loop_is_logged_and_ends_run_non_zero(tmp_path, monkeypatch, records):
    board = Board(tmp_path).write(TWO_CHARTS)
    for name, text in TWO_CHARTS_DATA.items():
        board.data(name, text)

    def broken_dispatch(self, ahead: float = 0.0) -> None:
        raise RuntimeError("a bug in the loop")

    # Fault injection: the product has no known bug to trigger, so one loop step is made to raise.
    monkeypatch.setattr(daemon.Daemon, "_dispatch", broken_dispatch)
    assert daemon.run(board.file) == daemon.EXIT_CRASHED
    [crash] = [r for r in records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert crash.levelno == logging.ERROR and "a bug in the loop" in str(crash.exc_info[1])
    # Everything was released on the way out: the lock (a build can run at once) and the pages.
    assert (board.output / "status.json").is_file()
    monkeypatch.undo()
    result = board.cli("build", timeout=60)
    assert result.returncode == 0, result.stderr
    assert {c["state"] for c in board.status()["charts"]} == {"ok"}


def test_a_dying_thread_is_logged_by_the_plotboard_logger(records, monkeypatch):
    logger = logging.getLogger("plotboard")
    for attr in ("handlers", "propagate", "level"):  # setup_logging changes them: undone after the test
        monkeypatch.setattr(logger, attr, getattr(logger, attr))
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    cli_module.setup_logging()
    assert threading.excepthook is cli_module.log_thread_death
    logger.addHandler(records_handler := logging.Handler())
    records_handler.emit = records.append
    try:
        def die() -> None:
            raise ValueError("the feeder broke")

        thread = threading.Thread(target=die, name="plotboard-test-thread")
        thread.start()
        thread.join()
    finally:
        logger.removeHandler(records_handler)
    [death] = [r for r in records if r.exc_info and r.exc_info[0] is ValueError]
    assert death.levelno == logging.ERROR
    assert "plotboard-test-thread" in death.getMessage()


def test_a_guarded_thread_that_dies_is_logged_then_told_then_cleaned_up_after(records):
    seen = []

    def work() -> None:
        raise KeyError("lost")

    thread = threads.guarded_thread("plotboard-test-guarded", work, died=lambda name: seen.append(("died", name)),
                                    cleanup=lambda exc: seen.append(("cleanup", repr(exc))))
    thread.start()
    thread.join()
    assert seen == [("died", "plotboard-test-guarded"), ("cleanup", "KeyError('lost')")]
    [death] = [r for r in records if r.exc_info and r.exc_info[0] is KeyError]
    assert death.levelno == logging.ERROR
    assert death.getMessage() == "thread plotboard-test-guarded died: KeyError: 'lost'"

    done = threads.guarded_thread("plotboard-test-guarded", lambda: None, died=lambda name: seen.append(name))
    done.start()
    done.join()
    assert len(seen) == 2  # returning is not dying


# (method the thread calls, made to raise once; the thread's name; more arguments for run)
THREAD_FAULTS = [
    ("renderer.executors.pool:RenderPool._step", "plotboard-pool", ()),
    ("renderer.daemon.control:ControlServer._serve_once", "plotboard-control", ()),
    ("renderer.serve.server:BoardServer._expire", r"plotboard-serve-\d+", ("--serve", "0")),
]


@pytest.mark.parametrize(("method", "thread", "args"), THREAD_FAULTS, ids=["pool", "control", "serve"])
def test_run_stops_with_status_1_when_a_thread_it_depends_on_dies(board, method, thread, args):
    # A real daemon whose thread fails once: it must stop, not go on failing renders or hang.
    run = subprocess.run(with_fault(method, "run", "-c", board.file, *args), cwd=board.root, env=cli_env(),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    log = run.stderr
    assert run.returncode == daemon.EXIT_CRASHED, log
    name = method.rpartition(".")[2]
    # The thread's death with its traceback, then the daemon's one line naming it.
    assert re.search(rf"thread {thread} died: RuntimeError: injected fault in \w+\.{name}\n"
                     rf"Traceback \(most recent call last\):\n(.*\n)*?RuntimeError: injected fault", log), log
    assert re.search(rf"thread {thread} died(, abandoning \d+ renders? in flight)?; stopping \(exit status 1\)",
                     log), log
    if thread == "plotboard-pool":  # it died with the first renders handed to it
        assert re.search(r"thread plotboard-pool died, abandoning \d+ renders? in flight", log), log
    # Stopped at once: no render failed for it, none was published afterwards, the pages were
    # written a last time, and the board is free for a build.
    assert "WorkerDied" not in log and "UNAVAILABLE" not in log and "Unavailable" not in log, log
    status = json.loads((board.output / "status.json").read_text())
    assert [c["name"] for c in status["charts"]] == ["a", "b"]
    assert not any(c.get("error") for c in status["charts"]), status
    result = board.cli("build", timeout=60)
    assert result.returncode == 0, result.stderr
    assert {c["state"] for c in board.status()["charts"]} == {"ok"}


def test_build_exits_1_when_the_pool_dispatcher_dies(board):
    build = subprocess.run(with_fault("renderer.executors.pool:RenderPool._step", "build", "-c", board.file),
                           cwd=board.root, env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    assert build.returncode == 1, build.stderr
    assert "thread plotboard-pool died: RuntimeError: injected fault in RenderPool._step\nTraceback" in build.stderr
    why = "WorkerDied: the render pool's dispatcher thread died (RuntimeError: injected fault in RenderPool._step)"
    assert [(c["state"], c["error"]) for c in board.status()["charts"]] == [("error", why)] * 2
    assert why in build.stderr  # each chart's failure line says why
    again = board.cli("build", timeout=60)
    assert again.returncode == 0, again.stderr
    assert {c["state"] for c in board.status()["charts"]} == {"ok"}
