"""The board's metrics: one prometheus-client registry that `/metrics` answers (the daemon) and
`build --metrics-file` writes (renderer.metrics.textfile).

One custom collector makes every family at scrape time from what it holds: counters and the
duration histogram under a lock, and per chart a plain tuple (its state's inputs) that the
daemon's loop replaces whole. A scrape runs on the server's threads while the loop goes on: it
copies that table under the lock and judges the states outside it, at the moment of the scrape,
so a chart turns stale with nothing rendered. The loop never waits for a scrape longer than a
dict copy, and a scrape never iterates anything the loop owns.

`plotboard_renders_total` starts from the records (renders and failures per chart since the chart
first appeared, in .plotboard/state.json), so it survives restarts and separate `build` runs;
the duration histogram counts the renders of this process only (the records keep no durations).
No `_created` series: they would say when this process started, not when counting began.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Callable, Iterable, Iterator, NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily,
)

from renderer import __version__
from renderer.board.model import Board, Chart
from renderer.board.windows import WORST
from renderer.pages.status import judge
from renderer.store.records import ChartRecord

# Renders take from 10 ms (a tiny chart) to render_timeout (30 s by default): upper bounds in seconds.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATES = ("ok", "stale", "error", "pending")
# The text format generate_latest writes; newer prometheus-client versions name a later one in
# CONTENT_TYPE_LATEST, which older Prometheus servers do not know.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

AlertCounts = Callable[[], Iterable[tuple[str, str, int]]]  # (alert, result, count) triples


class Entry(NamedTuple):
    """What one internal chart's state follows from; `shown`: the chart the page shows it in
    (a later time window is part of its chart)."""

    shown: str
    first: bool  # the shown chart's own record (its first window's), whose success it exports
    rendered_at: float | None
    error: str | None
    stale_after: float | None


def entry(chart: Chart, record: ChartRecord | None) -> Entry:
    record = record or ChartRecord()
    return Entry(chart.window_of or chart.name, chart.window_of is None, record.rendered_at, record.error,
                 chart.stale_after)


class BoardMetrics:
    """The counts one process exposes; every method is safe from any thread."""

    def __init__(self, queued: Callable[[], int] = lambda: 0, alerts: AlertCounts | None = None,
                 clock: Callable[[], float] = time.time, publish_pending: Callable[[], int] = lambda: 0) -> None:
        self.queued, self.alerts, self.clock, self.publish_pending = queued, alerts, clock, publish_pending
        self._lock = threading.Lock()
        self._charts: dict[str, Entry] = {}  # internal chart name -> Entry
        self._failed: tuple[str, ...] = ()  # family members left out of the board: charts in error
        self._renders = {"ok": 0, "failed": 0}
        self._buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; the last: +Inf
        self._sum = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- what the daemon (or a build) tells --------------------------------------------------------

    def load(self, board: Board, records: dict[str, ChartRecord], counts: bool = False) -> None:
        """Every chart of the board anew (at start, after a reload): a removed chart's series go.
        `counts`: also start the render counters from the records (once, at start)."""
        table = {chart.name: entry(chart, records.get(chart.name)) for chart in board.charts}
        failed = tuple(f.name for f in board.failed)
        totals = None
        if counts:
            totals = {"ok": sum(r.renders for r in records.values()),
                      "failed": sum(r.failures for r in records.values())}
        with self._lock:
            self._charts, self._failed = table, failed
            if totals is not None:
                self._renders = totals

    def published(self, chart: Chart, record: ChartRecord, ok: bool, duration_s: float | None) -> None:
        """A render's outcome was published: its chart's record is `record` now."""
        new = entry(chart, record)
        with self._lock:
            self._charts[chart.name] = new
            self._renders["ok" if ok else "failed"] += 1
            self._observe(duration_s)

    def observe(self, duration_s: float | None) -> None:
        """A render's duration, for a pass that counts renders from the records (build)."""
        with self._lock:
            self._observe(duration_s)

    def _observe(self, duration_s: float | None) -> None:
        if duration_s is not None and duration_s >= 0:
            self._buckets[bisect.bisect_left(BUCKETS, duration_s)] += 1
            self._sum += duration_s

    # -- what a scrape reads -----------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    def answer(self) -> tuple[str, bytes]:
        """/metrics' answer: (Content-Type, body)."""
        return CONTENT_TYPE, self.exposition()

    @property
    def routes(self) -> dict[str, Callable[[], tuple[str, bytes]]]:
        """The paths these metrics answer, for the server's route table (renderer.serve)."""
        return {"/metrics": self.answer}

    def collect(self) -> Iterator:
        now = self.clock()
        with self._lock:
            charts, failed = dict(self._charts), self._failed
            renders, buckets, total = dict(self._renders), list(self._buckets), self._sum
        c = CounterMetricFamily("plotboard_renders", "Renders published, by result, since each chart first "
                                "appeared (kept in .plotboard/state.json)", labels=["result"])
        for result in ("ok", "failed"):
            c.add_metric([result], renders[result])
        yield c
        cumulative, running = [], 0
        for bound, n in zip([*map(str, BUCKETS), "+Inf"], buckets):
            running += n
            cumulative.append((bound, running))
        yield HistogramMetricFamily("plotboard_render_duration_seconds", "Time each render took, ok or failed, "
                                    "since this process started", buckets=cumulative, sum_value=total)
        yield from self._charts_families(charts, failed, now)
        yield GaugeMetricFamily("plotboard_renders_queued", "Renders wanted and not yet finished: waiting for "
                                "their quiet window, a worker or a later time window's interval, or running",
                                value=self.queued())
        sent = CounterMetricFamily("plotboard_alerts_sent", "Alert messages by alert and result",
                                   labels=["alert", "result"])
        for alert, result, n in (self.alerts() if self.alerts else ()):
            sent.add_metric([alert, result], n)
        yield sent
        yield GaugeMetricFamily("plotboard_publish_pending_files", "Files waiting to be sent to object storage "
                                "([publish]); 0 without it", value=self.publish_pending())
        yield InfoMetricFamily("plotboard_build", "The plotboard version running", value={"version": __version__})

    @staticmethod
    def _charts_families(charts: dict[str, Entry], failed: tuple[str, ...], now: float) -> Iterator:
        states: dict[str, str] = dict.fromkeys(failed, "error")
        success = GaugeMetricFamily("plotboard_chart_last_success_timestamp_seconds",
                                    "End of each chart's last successful render (its first time window's), "
                                    "Unix time", labels=["chart"])
        for e in charts.values():
            state = judge(e.error, e.rendered_at, e.stale_after, now)
            before = states.get(e.shown)
            states[e.shown] = state if before is None else min(before, state, key=WORST.index)
            if e.first and e.rendered_at is not None:
                success.add_metric([e.shown], e.rendered_at)
        by_state = GaugeMetricFamily("plotboard_charts", "Charts by state, judged at the scrape",
                                     labels=["state"])
        for state in STATES:
            by_state.add_metric([state], sum(1 for s in states.values() if s == state))
        yield by_state
        yield success

