"""The daemon's guard and thread deaths: an unexpected error is logged with its traceback and
ends `run` with a non-zero status (so a supervisor restarts it), and any thread's death goes to
the plotboard logger."""

from __future__ import annotations

import logging
import threading

import pytest
from conftest import TWO_CHARTS, TWO_CHARTS_DATA, Board

from renderer import cli as cli_module
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
