"""Renders the daemon has submitted and not yet published: each a Flight, by chart, with their
results handed back through a queue.

An executor resolves a future on its own thread; the callback here only queues the result and
wakes the loop, which takes the results on its own thread (`InFlight.take`).
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Iterator

from renderer.board.model import Chart
from renderer.board.triggers import Trigger
from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput


@dataclass(eq=False)
class Flight:
    """A render in flight; compared by identity, so a set can hold several of one chart."""

    chart: Chart
    fingerprint: str  # of what it renders: published as the record's fingerprint
    trigger: Trigger
    started: float
    executor: object
    dispatched_at: float = 0.0  # when its chart's timer started it (for an early render: later)
    discard: bool = False  # its chart was removed meanwhile, or (early) its inputs changed since
    early: bool = False  # started inside the chart's quiet window (renderer.daemon.early)
    outcome: RenderOutput | RenderFailure | None = None  # an early render's result, held
    files: tuple | None = None  # its files' sizes and mtimes when it started (renderer.daemon.upkeep.files_seen)



class InFlight:
    """The ordinary renders in flight, one per chart at most, and the results that came back."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.by_chart: dict[str, Flight] = {}  # ordinary renders; early ones are EarlyRenders'
        self._results: "queue.SimpleQueue[tuple[str, Flight, Future]]" = queue.SimpleQueue()

    def __len__(self) -> int:
        return len(self.by_chart)

    def __contains__(self, name: str) -> bool:
        return name in self.by_chart

    def add(self, name: str, flight: Flight) -> None:
        """Count `flight` as the chart's render in flight (submitted already, or early)."""
        self.by_chart[name] = flight

    def submit(self, executor, name: str, flight: Flight, job: RenderJob) -> None:
        """Start the job; its outcome comes back through `take`, whatever happens."""
        try:
            future = executor.submit(job)
        except Exception as exc:  # noqa: BLE001 - e.g. a remote cluster that went away
            future = Future()
            future.set_result(RenderFailure(name, f"{type(exc).__name__}: {exc}", kind=FailureKind.UNAVAILABLE))
        future.add_done_callback(lambda f, n=name, fl=flight: self._finished(n, fl, f))

    def _finished(self, name: str, flight: Flight, future: Future) -> None:
        self._results.put((name, flight, future))  # on the executor's thread: record and wake only
        self.wake()

    def take(self) -> Iterator[tuple[str, Flight, RenderOutput | RenderFailure]]:
        """The results that have come back; an ordinary render stops counting as in flight."""
        while True:
            try:
                name, flight, future = self._results.get_nowait()
            except queue.Empty:
                return
            if not flight.early and self.by_chart.get(name) is flight:
                del self.by_chart[name]
            yield name, flight, future.result()

    def discard(self, name: str) -> None:
        """The chart was removed: its render's result will be dropped."""
        if name in self.by_chart:
            self.by_chart[name].discard = True

    def executors(self) -> list[object]:
        return [f.executor for f in self.by_chart.values()]

    def clear(self) -> None:
        self.by_chart.clear()
