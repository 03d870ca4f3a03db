"""The daemon's side of the pages: what changed since they were last written (renderer.pages.model.Pages
keeps what they show), when to write them next (renderer.daemon.pagebatch), when a chart turns stale,
and the summary line of the renders since. Times are passed in."""

from __future__ import annotations

import logging
import time

from renderer.board.config import Board, Chart
from renderer.errors import PlotboardError
from renderer.daemon.pagebatch import PageBatcher, StaleTimes, stale_at
from renderer.pages.model import Pages
from renderer.pages.write import write_pages
from renderer.daemon.progress import RenderSummary
from renderer.store.records import ChartRecord, save_state

log = logging.getLogger("plotboard")


class PageKeeper:
    def __init__(self) -> None:
        self.batch = PageBatcher()
        self.model = Pages()  # what the pages showed when last written, kept between writes
        self.state: dict[str, str] = {}  # each record's "name":{...} as last saved in state.json
        self.stale = StaleTimes()
        self.summary = RenderSummary()

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
        # The write's cost is this thread's CPU time, not the time that passed: a write the
        # process was stopped in (SIGSTOP, a suspended machine) would otherwise count the pause,
        # and delay the next writes by COST_FACTOR times it.
        started = time.thread_time()
        try:
            changed = self.batch.take_changed()
            state = save_state(board, records, self.state, changed)
            # What the pages follow from (for a later build's pages_current) costs a digest of
            # all of state.json: worth it once renders rest, not at each write of a burst.
            write_pages(board, records, now, self.model, changed, state if at_rest or final else None)
        except (PlotboardError, OSError) as exc:
            log.error("cannot write the pages: %s", exc)
            self.batch.wrote(now)
            self.batch.failed(now)
            ok = False
        else:
            self.batch.wrote(now, took=time.thread_time() - started, at_rest=at_rest)
            ok = True
        if line := self.summary.line(now, force=final):
            log.info("%s", line)
        return ok
