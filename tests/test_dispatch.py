"""The daemon's dispatch policy (renderer.daemon.dispatch), driven by a made-up clock and an
executor that only records what it is given: how many renders start, and which wait."""

from __future__ import annotations

from concurrent.futures import Future

from conftest import chart, fast_board
from fakeclock import Clock

from renderer.board.config import load_board
from renderer.board.triggers import Trigger
from renderer.daemon.dispatch import MAX_AHEAD, Dispatcher
from renderer.daemon.early import EarlyRenders
from renderer.daemon.executor_set import ExecutorSet
from renderer.daemon.flight import InFlight
from renderer.daemon.schedule import QUEUED, RENDERING, Scheduler
from renderer.store.records import ChartRecord


class Recorder:
    """An executor whose renders never finish: the policy alone decides how many it gets."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, job) -> Future:
        self.jobs.append(job.name)
        return Future()


def setup(tmp_path, n: int, workers: int):
    b = fast_board(tmp_path / "board", *(chart(f"c{i}") for i in range(n)))
    b.file.write_text(b.file.read_text().replace("workers = 2\n", f"workers = {workers}\n", 1))
    board = load_board(b.file)
    clock = Clock()
    scheduler = Scheduler(clock)
    executors = ExecutorSet()
    executors.replace(Recorder())
    published = []
    dispatcher = Dispatcher(clock, scheduler, InFlight(lambda: None), EarlyRenders(), executors,
                            lambda *a: published.append(a))
    for c in board.charts:
        scheduler.add(c.name).request(clock(), Trigger.NEW)
    return board, clock, scheduler, executors.current, dispatcher


def test_each_worker_gets_one_render_and_one_queued_in_board_order(tmp_path):
    board, clock, scheduler, executor, dispatcher = setup(tmp_path, 10, workers=2)
    dispatcher.dispatch(board, {})
    assert executor.jobs == ["c0", "c1", "c2", "c3"]
    assert dispatcher.backlog and dispatcher.dispatched_at == clock()
    assert [scheduler[f"c{i}"].state for i in range(5)] == [RENDERING] * 4 + [QUEUED]


def test_before_a_page_write_the_workers_get_enough_for_its_duration(tmp_path):
    board, clock, scheduler, executor, dispatcher = setup(tmp_path, 200, workers=2)
    assert dispatcher.render_s == 0.1  # until a render says otherwise
    dispatcher.dispatch(board, {}, ahead=0.5)  # 0.5 s at 0.1 s a render: 5 more queued per worker
    assert len(executor.jobs) == (1 + 1 + 5) * 2
    dispatcher.dispatch(board, {}, ahead=1000.0)  # never more than MAX_AHEAD per worker
    assert len(executor.jobs) == (1 + 1 + MAX_AHEAD) * 2


def test_a_failing_chart_whose_inputs_did_not_change_waits_for_its_retry(tmp_path):
    board, clock, scheduler, executor, dispatcher = setup(tmp_path, 1, workers=1)
    dispatcher.dispatch(board, {})
    assert executor.jobs == ["c0"]
    flight = dispatcher.inflight.by_chart.pop("c0")
    scheduler["c0"].finish(clock(), False, 1, None)  # it failed; then a change event
    scheduler.change("c0")
    clock.advance(1.0)
    record = ChartRecord(failed_fingerprint=flight.fingerprint)
    dispatcher.dispatch(board, {"c0": record})
    assert executor.jobs == ["c0"] and scheduler["c0"].state != RENDERING
    clock.advance(2.0)  # its backoff is over: a retry renders it
    dispatcher.dispatch(board, {"c0": record})
    assert executor.jobs == ["c0", "c0"]
