"""The alerts as `run` and `build` use them: the judge (renderer.alerts.judge), one sender per
alert (renderer.alerts.send), and the bookkeeping (renderer.alerts.book).

Under `run`, `Alerting` lives in the daemon's loop thread: the loop tells it which charts'
records changed, asks it when to wake (`wakeups`) and lets it `step` each turn; the senders'
threads only record their results and wake the loop. `build` calls `send_due` once its charts
are rendered: the events since the state it last recorded are sent at once, within a bounded
time, and what could not be sent stays due for the next build.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

from renderer.alerts import book
from renderer.alerts.judge import Judge
from renderer.alerts.send import Sender, attempt
from renderer.board.model import Board
from renderer.errors import PlotboardError
from renderer.store.records import ChartRecord
from renderer.threads import Died

log = logging.getLogger("plotboard")

BUILD_PATIENCE = 10.0  # seconds a build spends on each alert's message at most


def _save(board: Board, told: Any, stats: dict[str, book.Stats]) -> None:
    try:
        book.save(board, told, stats)
    except (PlotboardError, OSError) as exc:
        log.error("cannot save the alerts' bookkeeping: %s", exc)


class Alerting:
    """The daemon's alerts (see the module's docstring); a context manager that starts and stops
    the senders. `notify` wakes the loop; `dirty` is called (from the loop) when status.json's
    `alerts` changed."""

    def __init__(self, board: Board, records: dict[str, ChartRecord], clock: Callable[[], float],
                 notify: Callable[[], None], dirty: Callable[[], None], died: Died | None = None) -> None:
        self.board, self.clock, self.wake, self.dirty, self.died = board, clock, notify, dirty, died
        self.news = 0  # bumped by the senders' threads (a result, a failed attempt): step() looks then
        self._looked = -1
        told, self.stats = book.load(board)
        self.judge = Judge(board, records, told, clock())
        self.lock = threading.Lock()
        self.results: collections.deque = collections.deque()  # (message, ok) from the senders
        self.senders: dict[str, Sender] = {}
        self._shown: list[dict[str, Any]] | None = None

    def __enter__(self) -> "Alerting":
        self._start_senders()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sender in self.senders.values():
            sender.stop(wait=0)
        deadline = time.monotonic() + 1.0  # an attempt in flight may end meanwhile; a message not sent stays due
        for sender in self.senders.values():
            sender.stop(wait=max(0.0, deadline - time.monotonic()))
        self.senders.clear()
        self._take_results()
        self._save()

    def _start_senders(self) -> None:
        for alert in self.board.alerts:
            if alert.name not in self.senders:
                self.stats.setdefault(alert.name, book.Stats())
                self.senders[alert.name] = Sender(alert, self.board.title, self.board.output, self.stats[alert.name],
                                                  self.lock, self._done, self._notify, self.died, self.clock)

    def _done(self, sender: Sender, message, ok: bool) -> None:  # a sender's thread
        self.results.append((sender, message, ok))
        self._notify()

    def _notify(self) -> None:  # a sender's thread
        self.news += 1
        self.wake()

    # -- what the loop calls -------------------------------------------------------------------

    def changed(self, name: str) -> None:
        """A chart's record changed (a render was published)."""
        self.judge.changed(name, self.clock())

    def wakeups(self) -> list[float]:
        at = self.judge.next_deadline()
        return [] if at is None else [at]

    def step(self) -> None:
        """Take the senders' results, judge what time changed, hand out the messages due."""
        if not self.board.alerts:
            return
        now = self.clock()
        save = self._take_results()
        for message in self.judge.tick(now):
            self.senders[message.alert].put(message)
        if self.judge.told_changed:
            self.judge.told_changed, save = False, True
        if self.news != self._looked:  # the counts may have changed
            self._looked = self.news
            shown = self.shown()
            if shown != self._shown:
                self._shown = shown
                self.dirty()
                save = True
        if save:
            self._save()

    def _take_results(self) -> bool:
        taken = False
        while self.results:
            sender, message, ok = self.results.popleft()
            if self.senders.get(message.alert) is not sender:
                continue  # a sender a reload replaced: its message is sent again by the new one
            if ok:
                self.judge.delivered(message, self.clock())
            else:
                self.judge.gave_up(message)
            taken = True
        return taken

    def set_board(self, board: Board) -> None:
        """A reload: new, changed and removed alerts and charts."""
        for name in [n for n, s in self.senders.items() if n not in {a.name for a in board.alerts}
                     or s.alert != next(a for a in board.alerts if a.name == n)]:
            self.senders.pop(name).stop(wait=0)
            self.judge.busy.pop(name, None)
        self.board = board
        self.stats = {a.name: self.stats.get(a.name, book.Stats()) for a in board.alerts}
        self.judge.set_board(board, self.clock())
        self._start_senders()
        self._notify()

    def shown(self) -> list[dict[str, Any]] | None:
        """status.json's `alerts` (None without alerts)."""
        if not self.board.alerts:
            return None
        with self.lock:
            return [self.stats[a.name].shown(a.name) for a in self.board.alerts]

    def triples(self) -> list[tuple[str, str, int]]:
        """`plotboard_alerts_sent_total`'s series: (alert, "ok" messages sent | "failed" attempts, count)."""
        return as_triples(self.counts())

    def counts(self) -> dict[str, dict[str, int]]:
        """Per alert, messages sent and attempts failed (as status.json shows them)."""
        with self.lock:
            return {name: {"sent": s.sent, "failed": s.failed} for name, s in self.stats.items()}

    def _save(self) -> None:
        with self.lock:
            stats = {n: book.Stats(**vars(s)) for n, s in self.stats.items()}
        _save(self.board, self.judge.told, stats)


def send_due(board: Board, records: dict[str, ChartRecord], patience: float = BUILD_PATIENCE,
             clock: Callable[[], float] = time.time) -> bool:
    """`build`: send every alert's events between the state last recorded and now, each alert's
    message tried for at most `patience` seconds; returns whether status.json's `alerts` changed."""
    if not board.alerts:
        return False
    told, stats = book.load(board)
    before = [s.shown(n) for n, s in stats.items()]
    judge = Judge(board, records, told, clock())
    lock = threading.Lock()
    for message in judge.tick(clock(), flush_all=True):
        alert = next(a for a in board.alerts if a.name == message.alert)
        deadline = time.monotonic() + patience
        while True:
            left = deadline - time.monotonic()
            if attempt(alert, board.title, board.output, message, stats[alert.name], lock, clock,
                       timeout=max(0.5, left)):
                judge.delivered(message, clock())
                break
            if time.monotonic() + 1.0 >= deadline:
                log.warning("alert %s: %d event(s) not sent; the next build tries again", alert.name,
                            len(message.events))
                break
            time.sleep(1.0)
    _save(board, judge.told, stats)
    return [s.shown(n) for n, s in stats.items()] != before


def as_triples(counts: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    return [(name, result, c[key]) for name, c in counts.items() for result, key in (("ok", "sent"), ("failed", "failed"))]


def recorded_triples(board: Board) -> list[tuple[str, str, int]]:
    """The counts of `as_triples` as the bookkeeping has them (a build's metrics file)."""
    stats = book.load(board)[1]
    return as_triples({a.name: {"sent": stats[a.name].sent, "failed": stats[a.name].failed} for a in board.alerts})


def shown(board: Board) -> list[dict[str, Any]] | None:
    """status.json's `alerts` as the bookkeeping has them (None without alerts)."""
    if not board.alerts:
        return None
    stats = book.load(board)[1]
    return [stats[a.name].shown(a.name) for a in board.alerts]

