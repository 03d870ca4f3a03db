"""The daemon's small parts, driven by a made-up clock: early renders and page batching.

The end-to-end tests in test_daemon.py check the same behaviour through a real daemon with
generous deadlines; the timing itself (published exactly when the quiet window ends, at most
one page write per PAGES_DELAY during a burst) is checked here, where time is ours.
"""

from __future__ import annotations

import math

import pytest
from fakeclock import Clock

from renderer.board.model import Chart
from renderer.daemon.early import EarlyRenders
from renderer.daemon.flight import Flight
from renderer.render.jobs import RenderFailure, RenderOutput
from renderer.daemon.pagekeeper import PAGES_DELAY, PageBatcher, StaleTimes, stale_at
from renderer.daemon.schedule import QUEUED, QUIET, RENDERING, Scheduler
from renderer.store.records import ChartRecord


def chart(name: str = "c", stale_after: float | None = None) -> Chart:
    return Chart(name=name, title=name, description="", plot="plots:line", plot_file=None, inputs=(),
                 every=None, cron=None, stale_after=stale_after, params={})


def output(name: str = "c") -> RenderOutput:
    return RenderOutput(name, {f"{name}.png": b"png"}, "h", 1.0)


class EarlyHarness:
    """The daemon's use of EarlyRenders and its chart timer, step by step, without processes."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.scheduler = Scheduler(self.clock)
        self.scheduler.add("c")
        self.early = EarlyRenders()
        self.published: list[tuple[float, Flight]] = []

    def closed_write(self) -> None:
        self.scheduler.change("c")
        self.early.changed("c", closed=True)

    def start_early(self, current: str = "v1") -> Flight | None:
        for name in self.early.candidates():
            timer = self.scheduler[name]
            if timer.state == QUEUED and timer.reason == "change" and not timer.failures:
                flight = Flight(chart(name), current, "change", self.clock(), executor=None)
                self.early.started(name, flight)
                return flight
        return None

    def dispatch(self, current: str = "v1") -> Flight | None:
        """What Daemon._dispatch does for ready charts: the early render becomes the render."""
        for name in self.scheduler.ready():
            self.early.window_over(name)
            flight = self.early.take(name, current, queued=self.scheduler[name].state == QUEUED)
            self.scheduler[name].start(self.clock())
            if flight is None:
                return None  # an ordinary render starts
            if flight.outcome is not None:
                self.published.append((self.clock(), flight))
            return flight
        return None


def test_an_early_render_done_inside_the_quiet_window_is_published_when_the_window_ends():
    h = EarlyHarness()
    h.closed_write()
    started_at = h.clock()
    flight = h.start_early()
    assert flight is not None and h.early.running == 1
    h.clock.advance(QUIET / 4)
    h.early.finished("c", flight, output())
    assert h.early.running == 0 and flight.outcome is not None
    assert h.dispatch() is None and h.published == []  # not before the window ends
    h.clock.advance(QUIET - QUIET / 4)
    assert h.dispatch() is flight
    assert [t for t, _ in h.published] == [pytest.approx(started_at + QUIET)]
    assert h.scheduler["c"].state == RENDERING and not flight.early


def test_an_early_render_still_running_when_the_window_ends_becomes_the_render_in_flight():
    h = EarlyHarness()
    h.closed_write()
    flight = h.start_early()
    h.clock.advance(QUIET)
    taken = h.dispatch()
    assert taken is flight and flight.outcome is None and h.published == []
    assert h.early.running == 0  # counted as an ordinary render in flight from now on


def test_an_event_after_the_early_render_started_discards_it():
    h = EarlyHarness()
    h.closed_write()
    flight = h.start_early()
    h.clock.advance(QUIET / 2)
    h.scheduler.change("c")
    h.early.changed("c", closed=False)  # the writer opened the file again
    assert flight.discard
    result = output()
    h.early.finished("c", flight, result)
    assert flight.outcome is None  # its result is dropped: the daemon deletes what its worker staged
    assert h.early.take_dropped() == [result] and h.early.take_dropped() == []
    assert h.start_early() is None  # not closed again: no second early render
    h.clock.advance(QUIET)
    assert h.dispatch() is None and h.published == []  # an ordinary render starts instead


def test_an_early_render_whose_inputs_differ_at_the_window_end_is_not_used():
    h = EarlyHarness()
    h.closed_write()
    flight = h.start_early(current="v1")
    result = output()
    h.early.finished("c", flight, result)
    assert h.early.take_dropped() == []  # held while it may still be used
    h.clock.advance(QUIET)
    assert h.dispatch(current="v2") is None and flight.discard and h.published == []
    assert h.early.take_dropped() == [result] and flight.outcome is None


def test_early_results_held_when_the_board_changes_are_dropped():
    h = EarlyHarness()
    h.closed_write()
    flight = h.start_early()
    result = output()
    h.early.finished("c", flight, result)
    h.early.drop_all()
    assert flight.discard and h.early.take_dropped() == [result] and h.early.held() == []


def test_one_early_render_per_chart_and_quiet_window():
    h = EarlyHarness()
    h.closed_write()
    first = h.start_early()
    first.discard = True  # as if its inputs changed
    h.early.changed("c", closed=True)
    assert h.start_early() is None  # tried already in this window
    h.clock.advance(QUIET)
    h.dispatch()
    h.scheduler["c"].finish(h.clock(), True, 0, None)
    h.closed_write()
    assert h.start_early() is not None  # a new window, a new chance


def test_a_failing_chart_gets_no_early_render():
    h = EarlyHarness()
    h.scheduler["c"].failures = 2
    h.closed_write()
    assert h.start_early() is None


def test_a_reload_drops_every_held_early_render():
    h = EarlyHarness()
    h.closed_write()
    flight = h.start_early()
    h.early.drop_all()
    assert flight.discard and h.early.held() == []
    h.early.finished("c", flight, RenderFailure("c", "ValueError: x"))
    assert flight.outcome is None and h.early.running == 0


# -- page batching ------------------------------------------------------------------------------

def test_pages_are_written_at_once_when_renders_come_to_rest():
    pages, now = PageBatcher(), 100.0
    assert not pages.should_write(now, at_rest=True, stale_at=None)  # nothing changed
    pages.dirty(now)
    assert pages.should_write(now, at_rest=True, stale_at=None)
    pages.wrote(now)
    assert pages.due is None and pages.written_at == now


def test_a_long_burst_writes_the_pages_once_per_delay():
    pages, writes, step, burst = PageBatcher(), [], 0.05, 10.0
    for i in range(int(burst / step)):  # a publish every 50 ms, renders never at rest
        now = 100.0 + i * step
        pages.dirty(now)
        if pages.should_write(now, at_rest=False, stale_at=None):
            pages.wrote(now)
            writes.append(now)
    assert math.floor(burst / PAGES_DELAY) - 1 <= len(writes) <= math.ceil(burst / PAGES_DELAY)
    assert all(b - a >= PAGES_DELAY - step for a, b in zip(writes, writes[1:]))
    assert writes[0] - 100.0 <= PAGES_DELAY + step  # the first publish waits at most the delay


def test_changes_that_trickle_in_at_rest_leave_cost_factor_write_durations_between_writes():
    """One publish every 60 ms with the renders at rest in between (a 1,000-file family each
    file changing once a minute): writes that take 0.1 s come at most every COST_FACTOR × 0.1 s."""
    from renderer.daemon.pagekeeper import COST_FACTOR

    pages, writes, took = PageBatcher(), [], 0.1
    for i in range(200):
        now = 100.0 + i * 0.06
        pages.dirty(now)
        if pages.should_write(now, at_rest=True, stale_at=None):
            pages.wrote(now, took=took, at_rest=True)
            writes.append(now)
    assert all(b - a >= COST_FACTOR * took - 1e-9 for a, b in zip(writes, writes[1:])), writes
    assert len(writes) >= 200 * 0.06 / (COST_FACTOR * took + 0.06) - 1  # and no rarer than that
    pages.dirty(writes[-1] + 0.01)
    assert pages.wakeups(writes[-1] + 0.01, stale_at=None)[-1] == writes[-1] + COST_FACTOR * took


def test_the_loop_wakes_for_the_pages_when_they_are_due():
    pages = PageBatcher()
    assert pages.wakeups(100.0, stale_at=None) == []
    pages.dirty(100.0)
    assert pages.wakeups(100.0, stale_at=None) == [100.0 + PAGES_DELAY]
    pages.wrote(100.5)
    assert pages.wakeups(100.5, stale_at=130.0) == [130.0]
    assert pages.wakeups(131.0, stale_at=130.0) == []  # past: should_write covers it


def test_a_chart_turning_stale_rewrites_the_pages():
    pages, records = PageBatcher(), {"a": ChartRecord(rendered_at=100.0), "b": ChartRecord(rendered_at=100.0)}
    charts = [chart("a", stale_after=60.0), chart("b", stale_after=None)]
    stale = StaleTimes()
    for c in charts:
        stale.set(c.name, stale_at(c, records[c.name]))
    pages.wrote(100.0)
    at = stale.next_after(pages.written_at)
    assert 160.0 < at < 160.1
    assert not pages.should_write(150.0, at_rest=True, stale_at=at)
    assert pages.should_write(at, at_rest=True, stale_at=at)
    pages.wrote(at)
    assert stale.next_after(pages.written_at) is None  # written once, not again


def test_stale_times_follow_each_charts_latest_render():
    stale = StaleTimes()
    for i in range(1000):
        stale.set(f"c{i}", 1000.0 + i)
    stale.set("c0", 5000.0)  # rendered again: its old time no longer counts
    assert stale.next_after(0.0) == 1001.0
    stale.set("c1", None)  # now failing: never turns stale
    assert stale.next_after(0.0) == 1002.0
    assert stale.next_after(1998.5) == 1999.0
    assert stale.next_after(1999.0) == 5000.0
    assert len(stale._heap) <= 2 * 999 + 64


def test_a_failed_write_is_retried():
    pages = PageBatcher(retry=1.0)
    pages.dirty(100.0)
    pages.wrote(100.0)
    pages.failed(100.0)
    assert pages.due == 101.0
    assert not pages.should_write(100.5, at_rest=False, stale_at=None)
    assert pages.should_write(101.0, at_rest=False, stale_at=None)


def test_charts_in_error_or_never_rendered_do_not_turn_stale():
    assert stale_at(chart("a", 1.0), ChartRecord(rendered_at=100.0, error="ValueError: x")) is None
    assert stale_at(chart("b", 1.0), ChartRecord()) is None
    assert stale_at(chart("c", None), ChartRecord(rendered_at=100.0)) is None


def test_on_a_board_whose_pages_are_slow_to_write_a_burst_writes_them_less_often():
    from renderer.daemon.pagekeeper import COST_FACTOR

    pages = PageBatcher()
    pages.wrote(100.0, took=0.02)  # a small board: the usual delay
    pages.dirty(100.0)
    assert pages.due == 100.0 + PAGES_DELAY
    pages.wrote(101.0, took=0.6)  # 0.6 s a write: at most 1/COST_FACTOR of the time goes to it
    pages.dirty(101.0)
    assert pages.due == 101.0 + COST_FACTOR * 0.6
    assert not pages.should_write(102.0, at_rest=False, stale_at=None)
    # The burst's renders are done: its last ones reach the pages at once.
    assert pages.should_write(102.0, at_rest=True, stale_at=None)
    pages.wrote(102.0, took=0.6, at_rest=True)
    pages.dirty(102.5)
    # At rest too, the next write waits out COST_FACTOR times the last one's duration.
    assert not pages.should_write(103.0, at_rest=True, stale_at=None)
    assert pages.should_write(102.0 + COST_FACTOR * 0.6, at_rest=True, stale_at=None)


def test_a_page_write_the_process_was_paused_in_is_not_counted_as_costly(built, monkeypatch):
    """The pages' spacing during a burst is COST_FACTOR times the last write's cost: a pause in
    the middle of a write (SIGSTOP, a suspended machine; here a sleep, which uses no CPU) must
    not count, or the next writes would wait COST_FACTOR times the pause."""
    import time

    import renderer.daemon.pagekeeper as pagekeeper
    from renderer.board.config import load_board
    from renderer.store.records import load_state

    real = pagekeeper.write_pages

    def paused(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(pagekeeper, "write_pages", paused)
    board = load_board(built.file)
    keeper = pagekeeper.PageKeeper()
    assert keeper.write(board, load_state(board), time.time())
    assert keeper.took < 0.5  # the write's own CPU time (milliseconds for two charts), not the pause


def test_failed_writes_back_off_doubling_up_to_a_minute_and_a_success_resets_it():
    """A write that keeps failing (a full disk) is tried again after 1, 2, 4 ... s, at most
    every RETRY_MAX (60 s), not every second for ever; one that succeeds starts again at 1 s."""
    from renderer.daemon.pagekeeper import RETRY_MAX

    clock, pages, waits = Clock(100.0), PageBatcher(retry=1.0), []
    pages.dirty(clock())
    for _ in range(10):
        while not pages.should_write(clock(), at_rest=True, stale_at=None):
            clock.advance(0.5)
        waits.append(clock() - pages.written_at if waits else 0.0)
        pages.failed(clock())
    assert waits[1:] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0], waits
    assert RETRY_MAX == 60.0 and pages.retry_at == clock() + RETRY_MAX
    clock.advance(RETRY_MAX)
    assert pages.should_write(clock(), at_rest=True, stale_at=None)
    pages.wrote(clock())
    pages.dirty(clock())
    pages.failed(clock())
    assert pages.retry_at == clock() + 1.0


def test_a_page_write_counts_its_cpu_and_disk_wait_not_a_wait_for_a_cpu(built, monkeypatch):
    """The write's cost is its CPU time plus its wait for the disk (fsync), the latter at most
    IO_CAP (a pause of the process in an fsync); time spent waiting for a CPU on a busy machine
    is no cost of the write's and must not space the writes. Clocks passed in."""
    import renderer.daemon.pagekeeper as pagekeeper
    from renderer.board.config import load_board
    from renderer.store.records import load_state

    cpu, io = Clock(10.0), Clock(0.0)
    real = pagekeeper.write_pages
    waits = []

    def waiting(*args, **kwargs):
        cpu.advance(0.001)
        io.advance(waits.pop(0))
        return real(*args, **kwargs)

    monkeypatch.setattr(pagekeeper, "write_pages", waiting)
    board = load_board(built.file)
    keeper = pagekeeper.PageKeeper(cpu_clock=cpu, io_clock=io)
    waits[:] = [0.2]  # an fsync that waited 0.2 s
    assert keeper.write(board, load_state(board), 1.0)
    assert keeper.took == pytest.approx(0.201)
    waits[:] = [3600.0]  # stopped an hour in the middle of an fsync
    assert keeper.write(board, load_state(board), 2.0)
    assert keeper.took == pytest.approx(0.001 + pagekeeper.IO_CAP)
    waits[:] = [0.0]  # no disk wait (however long it waited for a CPU): its CPU time
    assert keeper.write(board, load_state(board), 3.0)
    assert keeper.took == pytest.approx(0.001)


def test_fsync_time_is_counted_per_thread(tmp_path):
    """io_waited() grows by the time this thread's durable writes spent in fsync, and another
    thread's writes are not counted here."""
    import threading

    from renderer.render.files import io_waited, write_temp

    before = io_waited()
    write_temp(tmp_path, "a", b"x" * 100_000, durable=True)
    mine = io_waited()
    assert mine > before
    done = threading.Thread(target=lambda: write_temp(tmp_path, "b", b"y" * 100_000, durable=True))
    done.start()
    done.join()
    write_temp(tmp_path, "c", b"z", durable=False)
    assert io_waited() == mine
