"""The daemon's side of the pages: what changed since they were last written
(renderer.pages.model.Pages keeps what they show), when to write them next (batched, not per
render), when a chart turns stale, and the summary line of the renders since.

The pages are written once the renders have come to rest, or during a long burst at most
`delay` after the first publish that is not on them yet; also when a chart turns stale (the
page must say so without JavaScript). Times are passed in, so this is testable without a clock.
"""

from __future__ import annotations

import heapq
import logging
import time
from typing import Callable

from renderer.board.model import Board, Chart
from renderer.daemon.progress import RenderSummary
from renderer.errors import PlotboardError
from renderer.pages.model import Pages
from renderer.pages.write import write_pages
from renderer.render.files import io_waited
from renderer.store.records import ChartRecord, save_state

log = logging.getLogger("plotboard")

PAGES_DELAY = 1.0  # longest a publish waits for state.json and the pages while renders go on
RETRY_AFTER = 1.0  # after a failed write; doubled after each failure in a row, up to RETRY_MAX
RETRY_MAX = 60.0
# Between writes, at least COST_FACTOR times the last write's CPU time: at most 1/40 of the
# daemon's time goes to the pages (a 10,000-chart board's write takes about a tenth of a second,
# so it is rewritten every few seconds while renders go on; a small board's stays at the delay).
COST_FACTOR = 40.0
# A write's cost is its thread's CPU time plus the time it waited for the disk (fsync), the
# latter counted up to IO_CAP: a slow disk counts, while a pause of the process in an fsync
# (SIGSTOP, a suspended machine) costs the next writes at most COST_FACTOR × IO_CAP. The time
# that passed is not the cost: on a busy machine a write also waits for a CPU, and spacing the
# writes by that made a small board's page learn of a new image most of a second late.
IO_CAP = 0.25
STALE_SLACK = 0.01  # write just after the moment a chart turns stale, not just before


def stale_at(chart: Chart, record: ChartRecord | None) -> float | None:
    """When the chart turns stale (just after, so a page written then shows it), or None."""
    if chart.stale_after is None or record is None or record.rendered_at is None or record.error:
        return None
    return record.rendered_at + chart.stale_after + STALE_SLACK


class StaleTimes:
    """When each chart turns stale, in a heap: the next one is found without a look at every
    chart. `set` a chart's time again whenever its record changes."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._at: dict[str, float] = {}

    def set(self, name: str, at: float | None) -> None:
        if at is None:
            self._at.pop(name, None)
            return
        self._at[name] = at
        heapq.heappush(self._heap, (at, name))
        if len(self._heap) > 2 * len(self._at) + 64:  # mostly outdated entries: rebuild
            self._heap = [(t, n) for n, t in self._at.items()]
            heapq.heapify(self._heap)

    def next_after(self, after: float) -> float | None:
        """The first time after `after` (when the pages were last written) a chart turns stale."""
        while self._heap:
            at, name = self._heap[0]
            if self._at.get(name) == at and at > after:
                return at
            heapq.heappop(self._heap)  # outdated, or already on the pages written at `after`
        return None


class PageBatcher:
    def __init__(self, delay: float = PAGES_DELAY, retry: float = RETRY_AFTER, retry_max: float = RETRY_MAX) -> None:
        self.delay = delay
        self.retry = retry
        self.retry_max = retry_max
        self.failures = 0  # failed writes in a row
        self.due: float | None = None  # when the pages must be written at the latest
        self.written_at = 0.0
        self.took = 0.0  # how long the last write took
        self.rested = False  # the last write was made at rest (not during a burst)
        self.retry_at: float | None = None  # after a failed write: not before this, even at rest
        self.changed: set[str] | None = None  # charts whose records changed since the last write; None: any

    def dirty(self, now: float, name: str | None = None) -> None:
        """Something the pages show has changed (`name`: that chart's record)."""
        if name is not None and self.changed is not None:
            self.changed.add(name)
        if self.due is None:
            self.due = now + max(self.delay, COST_FACTOR * self.took)

    def urgent(self, now: float) -> None:
        """Write every chart's part at the next turn of the loop (a reload changed the board)."""
        self.due = now
        self.changed = None

    def take_changed(self) -> set[str] | None:
        """The charts to write the pages for (None: all), from now on collected afresh."""
        changed, self.changed = self.changed, set()
        return changed

    def should_write(self, now: float, at_rest: bool, stale_at: float | None) -> bool:
        """Whether to write now; `at_rest`: no render in flight or about to start; `stale_at`:
        when the next chart turns stale (`next_stale` after `written_at`)."""
        if stale_at is not None and stale_at <= now:
            self.dirty(now)
        if self.retry_at is not None and now < self.retry_at:
            return False
        return self.due is not None and (self.due <= now or (at_rest and now >= self._spaced()))

    def _spaced(self) -> float:
        """The earliest a write may follow the last at rest: changes that trickle in one at a
        time also leave at least COST_FACTOR times a write's duration between writes. The
        first write at rest after a burst (its last renders) comes at once."""
        return self.written_at + COST_FACTOR * self.took if self.rested else self.written_at

    def wrote(self, now: float, took: float = 0.0, at_rest: bool = False) -> None:
        """The pages were written at `now`, which took `took` seconds (`at_rest`: with no render
        in flight): on a board so big that writing them is slow, a burst waits longer between
        writes (COST_FACTOR)."""
        self.due = None
        self.written_at = now
        self.took = took
        self.rested = at_rest
        self.retry_at = None
        self.failures = 0

    def failed(self, now: float) -> None:
        """A write failed at `now`: try again after `retry` seconds, doubled after each failure
        in a row up to `retry_max` (a full disk is not hammered every second for ever)."""
        failures = self.failures + 1
        self.wrote(now)
        self.failures = failures
        wait = min(self.retry * 2.0 ** min(failures - 1, 32), self.retry_max)
        self.due = self.retry_at = now + wait
        self.changed = None  # what the failed write took is not on the pages

    def wakeups(self, now: float, stale_at: float | None) -> list[float]:
        """The times the loop must wake up for the pages."""
        times = [] if self.due is None else [self.due]
        if self.due is not None and now < self._spaced() < self.due:
            times.append(self._spaced())
        if stale_at is not None and stale_at > now:  # one already past is covered by `due`
            times.append(stale_at)
        return times



class PageKeeper:
    def __init__(self, cpu_clock: Callable[[], float] = time.thread_time,
                 io_clock: Callable[[], float] = io_waited) -> None:
        self.cpu_clock, self.io_clock = cpu_clock, io_clock
        self.batch = PageBatcher()
        self.model = Pages()  # what the pages showed when last written, kept between writes
        self.state: dict[str, str] = {}  # each record's "name":{...} as last saved in state.json
        self.stale = StaleTimes()
        self.summary = RenderSummary()
        self.alerts: Callable[[], list | None] = lambda: None  # status.json's `alerts` (renderer.alerts.service)
        self.changed: Callable[[], None] = lambda: None  # told when a page's files changed (--serve's /events)

    def track(self, chart: Chart, record: ChartRecord | None) -> None:
        """Know when the chart turns stale (a chart that is new, changed or just published)."""
        self.stale.set(chart.name, stale_at(chart, record))

    def forget(self, name: str) -> None:
        self.stale.set(name, None)

    def published(self, now: float, chart: Chart, record: ChartRecord, ok: bool) -> None:
        self.summary.add(now, ok, changed=ok and record.changed_at == now)
        self.track(chart, record)
        self.batch.dirty(now, chart.name)

    def urgent(self, now: float) -> None:
        """Write every chart's part at the next turn of the loop."""
        self.batch.urgent(now)

    def problems(self, problems: list[dict[str, str]], now: float) -> None:
        """The board's own problems (status.json's "problems", a banner on the page); the pages
        are written at once when they change."""
        if problems != self.model.problems:
            self.model.problems = problems
            self.batch.urgent(now)

    def _next_stale(self) -> float | None:
        return self.stale.next_after(self.batch.written_at)

    def wakeups(self, now: float) -> list[float]:
        return self.batch.wakeups(now, self._next_stale())

    def due(self, now: float, at_rest: bool) -> bool:
        return self.batch.should_write(now, at_rest, self._next_stale())

    @property
    def took(self) -> float:
        """How long the last write took (seconds)."""
        return self.batch.took

    def write(self, board: Board, records: dict[str, ChartRecord], now: float, final: bool = False,
              at_rest: bool = False) -> bool:
        """Write state.json and what changed of the pages (`at_rest`: no render in flight);
        False (logged) when that failed."""
        cpu, io = self.cpu_clock(), self.io_clock()  # the write's cost: see IO_CAP
        try:
            changed = self.batch.take_changed()
            state = save_state(board, records, self.state, changed)
            # What the pages follow from (for a later build's pages_current) costs a digest of
            # all of state.json: worth it once renders rest, not at each write of a burst.
            if write_pages(board, records, now, self.model, changed, state if at_rest or final else None,
                           alerts=self.alerts()):
                self.changed()
        except (PlotboardError, OSError) as exc:
            log.error("cannot write the pages: %s", exc)
            self.batch.failed(now)
            ok = False
        else:
            took = self.cpu_clock() - cpu + min(self.io_clock() - io, IO_CAP)
            self.batch.wrote(now, took=took, at_rest=at_rest)
            ok = True
        if line := self.summary.line(now, force=final):
            log.info("%s", line)
        return ok
