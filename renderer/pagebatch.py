"""When the daemon rewrites state.json, status.json and index.html: batched, not per render.

The pages are written once the renders have come to rest, or during a long burst at most
`delay` after the first publish that is not on them yet; also when a chart turns stale (the
page must say so without JavaScript). Times are passed in, so this is testable without a clock.
"""

from __future__ import annotations

from typing import Iterable

from renderer.config import Chart
from renderer.state import ChartRecord

PAGES_DELAY = 1.0  # longest a publish waits for state.json and the pages while renders go on
RETRY_AFTER = 1.0  # after a failed write
STALE_SLACK = 0.01  # write just after the moment a chart turns stale, not just before


def next_stale(charts: Iterable[Chart], records: dict[str, ChartRecord], after: float) -> float | None:
    """When the next chart turns stale, after time `after`; None if none will."""
    times = []
    for chart in charts:
        rec = records.get(chart.name)
        if chart.stale_after is None or rec is None or rec.rendered_at is None or rec.error:
            continue
        at = rec.rendered_at + chart.stale_after + STALE_SLACK
        if at > after:
            times.append(at)
    return min(times) if times else None


class PageBatcher:
    def __init__(self, delay: float = PAGES_DELAY, retry: float = RETRY_AFTER) -> None:
        self.delay = delay
        self.retry = retry
        self.due: float | None = None  # when the pages must be written at the latest
        self.written_at = 0.0
        self.retry_at: float | None = None  # after a failed write: not before this, even at rest

    def dirty(self, now: float) -> None:
        """Something the pages show has changed."""
        if self.due is None:
            self.due = now + self.delay

    def urgent(self, now: float) -> None:
        """Write at the next turn of the loop (a reload changed the board)."""
        self.due = now

    def should_write(self, now: float, at_rest: bool, stale_at: float | None) -> bool:
        """Whether to write now; `at_rest`: no render in flight or about to start; `stale_at`:
        when the next chart turns stale (`next_stale` after `written_at`)."""
        if stale_at is not None and stale_at <= now:
            self.dirty(now)
        if self.retry_at is not None and now < self.retry_at:
            return False
        return self.due is not None and (self.due <= now or at_rest)

    def wrote(self, now: float) -> None:
        self.due = None
        self.written_at = now
        self.retry_at = None

    def failed(self, now: float) -> None:
        self.due = self.retry_at = now + self.retry

    def wakeups(self, now: float, stale_at: float | None) -> list[float]:
        """The times the loop must wake up for the pages."""
        times = [] if self.due is None else [self.due]
        if stale_at is not None and stale_at > now:  # one already past is covered by `due`
            times.append(stale_at)
        return times
