"""What the daemon asks of its charts' records: which timers to queue at start, after a reload,
for a build's request or after a rescan. Plain functions over the board, the records and the
scheduler; times are passed in. The periodic checks are renderer.daemon.sweep (changes no event
reported, files altered in place) and renderer.daemon.repair_check (files deleted)."""

from __future__ import annotations

import logging
import os

from renderer.board.model import Board, Chart
from renderer.daemon.reload import BoardChange
from renderer.board.durations import next_due
from renderer.daemon.schedule import RENDERING, Scheduler
from renderer.board.inputs import is_pattern
from renderer.board.triggers import Trigger
from renderer.store.records import ChartRecord
from renderer.store.fingerprints import expand_inputs, fingerprint, holds, same
from renderer.board.windows import held_until
from renderer.store.workspace import why_render

log = logging.getLogger("plotboard")


def _why(board: Board, chart: Chart, records: dict[str, ChartRecord], now: float, limit: bool = True) -> str | None:
    return why_render(board, chart, records.get(chart.name), fingerprint(board, chart, expand_inputs(chart)), now,
                      limit)


def add_chart(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, chart: Chart, now: float,
              reason: Trigger | None = None, seen: dict[str, tuple[int, int] | None] | None = None) -> None:
    """A timer for a chart that is new to the daemon, queued if the chart is out of date.
    `seen`: files' stats over the daemon's start (files_seen), which many charts share."""
    timer = scheduler.add(chart.name)
    inputs = expand_inputs(chart)
    current = fingerprint(board, chart, inputs)
    why = why_render(board, chart, records.get(chart.name), current, now)
    if why:
        timer.request(now, reason or why)
        if seen is not None and inputs.stats:
            seen.update(inputs.stats)  # taken just now by the expansion
        timer.prepared = (current, inputs, files_seen(chart, seen))
    rec = records.get(chart.name)
    timer.hold_until = held_until(chart, rec.rendered_at if rec is not None else None)
    if rec is not None:
        timer.failures = rec.consecutive_failures if rec.error else 0
        if rec.rendered_at is not None:
            timer.scheduled_at = next_due(chart, rec.rendered_at)


def update_chart(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, chart: Chart,
                 now: float) -> None:
    """A reload changed the chart's settings: render it if that makes it out of date (a later
    time window too: its interval limits changes of its inputs, not of its settings)."""
    if _why(board, chart, records, now, limit=False):
        scheduler[chart.name].request(now, Trigger.RELOAD)
    rec = records.get(chart.name)
    if rec is not None and rec.rendered_at is not None:
        scheduler[chart.name].scheduled_at = next_due(chart, rec.rendered_at)


def add_and_update(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, change: BoardChange,
                   now: float) -> list[Chart]:
    """Timers for the charts a reload added, renders for those it changed (add_chart,
    update_chart); returns those charts."""
    added, changed = set(change.added), set(change.changed)
    touched = []
    for chart in board.charts:
        if chart.name in added:
            add_chart(board, records, scheduler, chart, now, reason=Trigger.RELOAD)
        elif chart.name in changed:
            update_chart(board, records, scheduler, chart, now)
        else:
            continue
        touched.append(chart)
    return touched


def want_render(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, name: str, force: bool,
                now: float) -> bool:
    """For a build's request: queue the chart's render if forced or out of date."""
    if not force and not _why(board, board.chart(name), records, now):
        return False
    scheduler[name].request(now, Trigger.BUILD, upgrade=True)  # also a failing chart's: never skipped
    return True


def rescan(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler) -> None:
    """Render charts whose inputs changed while no watch could see them."""
    for chart in board.charts:
        check(board, records, scheduler, chart)


def check(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, chart: Chart) -> bool:
    """Treat the chart as changed if its fingerprint is not that of its last render; True then."""
    rec = records.get(chart.name)
    if scheduler[chart.name].state == RENDERING or rec is None:
        return False
    current = fingerprint(board, chart, expand_inputs(chart))
    if holds(rec, current) or same(rec.failed_fingerprint, current):
        return False
    scheduler.change(chart.name)
    return True


def files_seen(chart: Chart, seen: dict[str, tuple[int, int] | None] | None = None) -> tuple:
    """What a cheap look sees of the files a chart's fingerprint reads: each literal input's
    and the plot module's size and mtime (`seen` caches a file's over one slice), and the
    patterns, which only the full check expands. The daemon takes it when a render starts, so
    the first check after the render costs no fingerprint (Sweep.rendered)."""
    def look(path: str) -> tuple[int, int] | None:
        if seen is None:
            return _stat(path)
        if path not in seen:
            seen[path] = _stat(path)
        return seen[path]

    files = [*chart.inputs, *([str(chart.plot_file)] if chart.plot_file else [])]
    return tuple((p, look(p)) if not is_pattern(p) else (p, None) for p in files)


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
