"""The per-chart render state machine and schedule times, driven by a made-up clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fakeclock import Clock

from renderer.board.model import Chart
from renderer.board.durations import next_due
from renderer.daemon.schedule import (
    BACKOFF_CAP, CEILING, IDLE, QUEUED, QUIET, RENDERING, ChartTimer, Scheduler, backoff,
)


def chart(every: float | None = None, cron: str | None = None) -> Chart:
    return Chart(name="c", title="c", description="", plot="plots:line", plot_file=None, inputs=(),
                 every=every, cron=cron, stale_after=None, params={})


def local(*args: int) -> float:
    return datetime(*args).astimezone().timestamp()  # cron speaks the machine's local time


def test_cron_next_times():
    every5 = chart(cron="*/5 * * * *")
    assert next_due(every5, local(2026, 3, 2, 12, 3, 10)) == local(2026, 3, 2, 12, 5)
    assert next_due(every5, local(2026, 3, 2, 12, 5, 0)) == local(2026, 3, 2, 12, 10)
    assert next_due(every5, local(2026, 3, 2, 23, 58, 30)) == local(2026, 3, 3, 0, 0)
    mondays = chart(cron="30 9 * * 1")  # 2026-03-02 is a Monday
    assert next_due(mondays, local(2026, 3, 2, 9, 29, 59)) == local(2026, 3, 2, 9, 30)
    assert next_due(mondays, local(2026, 3, 2, 9, 30, 1)) == local(2026, 3, 9, 9, 30)
    # Successive runs of a chart that renders at its due time step through the expression.
    t, seen = local(2026, 3, 2, 12, 0, 1), []
    for _ in range(3):
        t = next_due(every5, t + 0.2)  # renders end a little after they start
        seen.append(datetime.fromtimestamp(t).strftime("%H:%M"))
    assert seen == ["12:05", "12:10", "12:15"]


def test_interval_and_on_change_due_times():
    assert next_due(chart(every=30), 1000.0) == 1030.0
    assert next_due(chart(), 1000.0) is None


def test_backoff_doubles_up_to_the_cap():
    assert [backoff(n) for n in range(0, 5)] == [0, 1, 2, 4, 8]
    assert backoff(40) == BACKOFF_CAP
    assert backoff(10_000) == BACKOFF_CAP


def test_a_burst_of_changes_gives_one_render_after_the_quiet_window():
    clock = Clock()
    s = Scheduler(clock)
    t = s.add("c")
    for _ in range(5):  # five events within 100 ms (one save)
        s.change("c")
        clock.advance(0.02)
    assert t.state == QUEUED and s.ready() == []
    clock.advance(QUIET - 0.02 - 0.001)
    assert s.ready() == []
    assert s.next_wakeup() == pytest.approx(clock() + 0.001)
    clock.advance(0.002)
    assert s.ready() == ["c"]
    assert t.start(clock()) == "change"
    assert t.state == RENDERING and s.ready() == [] and s.next_wakeup() is None
    t.finish(clock(), ok=True, failures=0, scheduled_at=None)
    assert t.state == IDLE and s.ready() == [] and s.next_wakeup() is None


def test_continuous_writes_still_render_once_a_second():
    clock = Clock()
    s = Scheduler(clock)
    t = s.add("c")
    starts = []
    for _ in range(400):  # a write every 10 ms for 4 s
        s.change("c")
        if s.ready():
            t.start(clock())
            starts.append(clock())
            clock.advance(0.05)  # the render takes 50 ms; writes go on meanwhile
            s.change("c")
            t.finish(clock(), ok=True, failures=0, scheduled_at=None)
        clock.advance(0.01)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert 3 <= len(starts) <= 5
    assert all(CEILING - 0.02 <= g <= CEILING + 0.1 for g in gaps), gaps


def test_a_move_into_place_renders_at_once():
    clock = Clock()
    s = Scheduler(clock)
    t = s.add("c")
    s.change("c")  # the producer's temp file appeared (or an earlier write)
    clock.advance(0.01)
    s.change("c", moved=True)
    assert s.ready() == ["c"]
    assert t.start(clock()) == "move"


def test_one_render_in_flight_and_one_queued():
    clock = Clock()
    s = Scheduler(clock)
    t = s.add("c")
    s.request("c", "new")
    assert s.ready() == ["c"] and t.start(clock()) == "new"
    for _ in range(50):  # many changes while rendering queue exactly one more render
        clock.advance(0.01)
        s.change("c")
        assert s.ready() == []
    t.finish(clock(), ok=True, failures=0, scheduled_at=None)
    assert t.state == QUEUED
    clock.advance(QUIET)
    assert s.ready() == ["c"]
    t.start(clock())
    t.finish(clock(), ok=True, failures=0, scheduled_at=None)
    assert t.state == IDLE
    with pytest.raises(RuntimeError):
        t.start(clock())
    with pytest.raises(RuntimeError):
        t.finish(clock(), ok=True, failures=0, scheduled_at=None)


def test_interval_schedule_comes_due():
    clock = Clock()
    s = Scheduler(clock)
    t = s.add("c")
    t.scheduled_at = clock() + 30
    assert s.ready() == [] and s.next_wakeup() == clock() + 30
    clock.advance(30)
    assert s.ready() == ["c"]
    assert t.start(clock()) == "schedule"
    t.finish(clock(), ok=True, failures=0, scheduled_at=clock() + 30)
    assert t.state == IDLE and s.next_wakeup() == clock() + 30


def test_a_failing_chart_backs_off_and_a_change_retries_it_at_once():
    clock = Clock()
    s = Scheduler(clock)
    t = s.add("c")
    t.scheduled_at = clock()  # every second, say: the schedule waits while failing
    waits = []
    for failures in range(1, 12):
        assert s.ready() == ["c"]
        started = clock()
        t.start(clock())
        t.finish(clock(), ok=False, failures=failures, scheduled_at=clock() + 1)
        assert t.state == IDLE
        due = s.next_wakeup()
        clock.advance(due - clock() - 0.001)
        assert s.ready() == []
        clock.advance(0.001)
        waits.append(round(clock() - started, 3))
    assert waits[:5] == [1, 2, 4, 8, 16]
    assert max(waits) == BACKOFF_CAP
    assert s.ready() == ["c"]
    assert t.start(clock()) == "retry"
    t.finish(clock(), ok=False, failures=12, scheduled_at=None)
    clock.advance(1)
    s.change("c")  # the plot module or the data was fixed: no waiting for the backoff
    clock.advance(QUIET)
    assert s.ready() == ["c"]
    assert t.start(clock()) == "change"
    t.finish(clock(), ok=True, failures=0, scheduled_at=clock() + 1)
    assert t.failures == 0 and t.retry_at is None and s.next_wakeup() == clock() + 1


def test_skip_returns_to_idle_until_the_retry():
    clock = Clock()
    t = ChartTimer("c")
    t.request(clock(), "new")
    t.start(clock())
    t.finish(clock(), ok=False, failures=1, scheduled_at=None)
    t.change(clock())
    t.skip(clock())  # the daemon saw the same fingerprint that failed
    assert t.state == IDLE and t.due(clock()) == clock() + 1


def test_ready_orders_charts_by_how_long_they_waited():
    clock = Clock()
    s = Scheduler(clock)
    for name in ("a", "b", "c"):
        s.add(name)
    s.change("b")
    clock.advance(0.05)
    s.change("a")
    s.request("c", "new")
    clock.advance(QUIET)
    assert s.ready() == ["c", "b", "a"]  # c was requested at once, b's window closed first


def test_charts_requested_at_the_same_moment_start_in_board_order():
    """A cold start requests every chart at once: they render in the order they were added
    (the board's), so the board fills group by group and a page write rewrites few groups."""
    clock = Clock()
    s = Scheduler(clock)
    names = [f"c{i:04d}" for i in range(500)]
    for name in names:
        s.add(name).request(clock(), "new")
    assert s.ready() == names
    clock.t -= 1  # a clock that went back: every timer is looked at again, in the board's order
    assert s.ready() == []
    clock.advance(1)
    assert s.ready() == names


def test_a_clock_that_goes_back_does_not_stall_a_render():
    clock = Clock()
    s = Scheduler(clock)
    s.add("c")
    s.change("c")
    clock.t -= timedelta(hours=1).total_seconds()
    assert s.ready() == ["c"]


def test_due_now_yields_only_what_came_due_in_due_order_and_leaves_the_rest():
    clock = Clock()
    s = Scheduler(clock)
    start = clock()
    for i in range(10_000):
        s.add(f"c{i}").scheduled_at = start + 10 + i  # one comes due every second
    assert s.ready() == [] and s.next_wakeup() == start + 10
    clock.advance(14.5)
    assert s.ready() == ["c0", "c1", "c2", "c3", "c4"]
    taken = []
    for name in s.due_now():  # a caller with room for two renders
        taken.append(name)
        s[name].start(clock())
        if len(taken) == 2:
            break
    assert taken == ["c0", "c1"]
    assert s.ready() == ["c2", "c3", "c4"]  # the rest wait for the next look
    s.change("c9999")  # a change far down the board is seen at once
    assert s.next_wakeup() == start + 12  # c2 has waited longest
    assert "c9999" not in s.ready()  # its quiet window runs
    clock.advance(QUIET)
    assert "c9999" in s.ready()


def test_a_removed_timer_never_comes_due():
    clock = Clock()
    s = Scheduler(clock)
    s.add("a").scheduled_at = clock() + 1
    s.add("b").scheduled_at = clock() + 2
    s.remove("a")
    clock.advance(5)
    assert s.ready() == ["b"]
