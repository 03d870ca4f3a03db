"""What the daemon asks of its charts' records: which timers to queue at start, after a reload,
for a build's request, after a rescan, or to repair damaged output. Plain functions over the
board, the records and the scheduler; times are passed in."""

from __future__ import annotations

import logging
import os

from renderer.board.config import Board, Chart
from renderer.store.publish import remove_leftovers
from renderer.daemon.reload import BoardChange
from renderer.board.durations import next_due
from renderer.daemon.schedule import IDLE, RENDERING, Scheduler
from renderer.board.inputs import is_pattern
from renderer.store.records import ChartRecord, expand_inputs, fingerprint
from renderer.board.windows import held_until
from renderer.store.workspace import needs_repair, why_render

log = logging.getLogger("plotboard")


def _why(board: Board, chart: Chart, records: dict[str, ChartRecord], now: float, limit: bool = True) -> str | None:
    return why_render(board, chart, records.get(chart.name), fingerprint(board, chart, expand_inputs(chart)), now,
                      limit)


def add_chart(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, chart: Chart, now: float,
              reason: str | None = None, seen: dict[str, tuple[int, int] | None] | None = None) -> None:
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
        timer.known = (current, inputs, files_seen(chart, seen))
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
        scheduler[chart.name].request(now, "reload")
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
            add_chart(board, records, scheduler, chart, now, reason="reload")
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
    scheduler[name].request(now, "build", upgrade=True)  # also a failing chart's: never skipped
    return True


def rescan(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler) -> None:
    """Render charts whose inputs changed while no watch could see them."""
    for chart in board.charts:
        _check(board, records, scheduler, chart)


def _check(board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, chart: Chart) -> bool:
    """Treat the chart as changed if its fingerprint is not that of its last render; True then."""
    rec = records.get(chart.name)
    if scheduler[chart.name].state == RENDERING or rec is None:
        return False
    current = fingerprint(board, chart, expand_inputs(chart))
    if current in (rec.fingerprint, rec.failed_fingerprint):
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


class Sweep:
    """The periodic check that catches changes no event reported (a lost inotify event, a
    folder reached through a symlink, a file changed over NFS) and published files altered in
    place: called every `interval` seconds, it checks a slice of the charts, so that every
    chart is checked once every `board.check_every` seconds and the cost is spread evenly
    instead of stalling the loop. A chart whose files look as they did at its last check
    (sizes and mtimes, one stat each) and that has no pattern among its inputs costs no
    fingerprint."""

    def __init__(self) -> None:
        self.position = 0
        self.credit = 0.0
        self.looked: dict[str, tuple] = {}  # chart -> what files_seen saw at its last full check or render

    def rendered(self, name: str, files: tuple | None) -> None:
        """A render of the chart succeeded, started when its files looked like `files`."""
        if files is not None:
            self.looked[name] = files

    def step(self, board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, interval: float,
             now: float = 0.0) -> int:
        """Check the next slice; returns how many charts it found changed."""
        charts = board.charts
        if not charts:
            return 0
        self.credit = min(self.credit + len(charts) * interval / max(board.check_every, interval), len(charts))
        count, changed = int(self.credit), 0
        self.credit -= count
        seen: dict[str, tuple[int, int] | None] = {}
        for i in range(count):
            chart = charts[(self.position + i) % len(charts)]
            timer = scheduler[chart.name]
            if timer.state == IDLE and not timer.failures and (bad := needs_repair(board, records.get(chart.name))):
                log.warning("%s: %s altered; rendering it again", chart.name, ", ".join(bad))
                timer.request(now, "repair")
                continue
            if timer.held(now) or timer.state != IDLE:
                continue  # a later time window inside its interval waits anyway; a queued or running render looks again
            files = files_seen(chart, seen)
            if self.looked.get(chart.name) == files and not any(is_pattern(p) for p in chart.inputs):
                continue
            self.looked[chart.name] = files
            if _check(board, records, scheduler, chart):
                log.info("%s: a change no file event reported; rendering it", chart.name)
                changed += 1
        self.position = (self.position + count) % len(charts)
        return changed


class Repair:
    """Render again the charts whose published files are missing (unless they are failing:
    their backoff rules), looking at the output folder's listing only when the folder itself
    changed (its inode or mtime): a board at rest costs one stat. Files altered in place are
    the Sweep's."""

    def __init__(self) -> None:
        self.folder_stamp: tuple[int, int] | None = None

    def check(self, board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, now: float) -> None:
        try:
            st = os.stat(board.output)
            stamp = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self.folder_stamp:
            return
        try:
            present = set(os.listdir(board.output))
        except OSError:
            present = set()
        self.folder_stamp = stamp
        for name in remove_leftovers(board.output, present):
            log.info("removed leftover temporary file %s", board.output / name)
        # The output folder changes with every publish: while renders go on, this runs every
        # REPLAN_EVERY seconds over the whole board, so the common case stays one set operation a chart.
        for name, rec in records.items():
            if rec.rendered_at is None or present.issuperset(rec.files) or name not in scheduler:
                continue
            timer = scheduler[name]
            if timer.state != IDLE or timer.failures:
                continue
            missing = [f for f in rec.files if f not in present]
            log.warning("%s: %s missing; rendering it again", name, ", ".join(missing))
            timer.request(now, "repair")
