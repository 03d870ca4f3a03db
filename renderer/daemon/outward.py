"""What the daemon tells beyond its output folder: Prometheus metrics (renderer.metrics), alerts
(renderer.alerts) and the mirror in object storage (renderer.publish), behind the few calls the
loop makes (renderer.daemon.loop), so that the loop reads as the data flow and each of them can
grow without it."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Callable

from renderer.alerts.service import Alerting
from renderer.board.model import Board, Chart
from renderer.daemon.pagekeeper import PageKeeper
from renderer.metrics.board import BoardMetrics
from renderer.publish.hook import NoPublishing, publishing
from renderer.store.records import ChartRecord
from renderer.threads import Died


class Outward:
    """The metrics, alerts and publishing of one `plotboard run`."""

    def __init__(self, board: Board, clock: Callable[[], float], wake: Callable[[], None], died: Died,
                 queued: Callable[[], int]) -> None:
        self.clock, self.wake, self.died = clock, wake, died
        self.alerts: Alerting | None = None  # made at start, with the records
        self.publishing: NoPublishing = publishing(board, wake, died)
        self.metrics = BoardMetrics(queued=queued, alerts=lambda: self.alerts.triples() if self.alerts else (),
                                    publish_pending=self.publishing.pending)

    def start(self, stack: ExitStack, board: Board, records: dict[str, ChartRecord], pages: PageKeeper) -> None:
        """The records are loaded: counts from them, the alerts' senders started."""
        self.metrics.load(board, records, counts=True)
        self.alerts = stack.enter_context(Alerting(board, records, self.clock, self.wake,
                                                   lambda: pages.batch.dirty(self.clock()), self.died))
        pages.alerts = self.alerts.shown

    def step(self) -> None:
        """Each turn of the loop: the alerts judge what came due and take their senders' results."""
        self.alerts.step()

    def wakeups(self) -> list[float]:
        return self.alerts.wakeups()

    def published(self, chart: Chart, record: ChartRecord, ok: bool, seconds: float) -> None:
        """A render's outcome was published (ok) or recorded as failed."""
        self.metrics.published(chart, record, ok, seconds)
        self.alerts.changed(chart.name)

    def reloaded(self, board: Board, records: dict[str, ChartRecord]) -> None:
        self.metrics.load(board, records)
        self.alerts.set_board(board)
