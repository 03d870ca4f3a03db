"""Early renders: start rendering a chart as soon as a writer closes its input file.

A closed file is usually a finished save, but the writer may open it again, so the chart's
quiet window (renderer.daemon.schedule) still runs and nothing is published before it ends. If no
event for the chart came in meanwhile (any event discards the early render), the early render
read the files exactly as they are when the window ends: its image is published then, or as
soon as it is done, instead of a render only starting then. Only idle workers take early
renders, one per chart and quiet window; a polling watcher reports no closes, so never starts
one.

This class holds only the bookkeeping; the daemon submits and publishes. It needs no clock:
the quiet window is the chart timer's, and the daemon passes times into the flights it makes.
"""

from __future__ import annotations

import logging

from renderer.daemon.flight import Flight
from renderer.render.jobs import RenderFailure, RenderOutput
from renderer.store.fingerprints import same

log = logging.getLogger("plotboard")


class EarlyRenders:
    def __init__(self) -> None:
        self._held: dict[str, Flight] = {}  # by chart: early renders that are still current
        self._running: set[Flight] = set()  # early renders whose result has not come back
        self._wanted: set[str] = set()  # charts whose input a writer has just closed
        self._tried: set[str] = set()  # charts that had their early render this window
        self._dropped: list[RenderOutput | RenderFailure] = []  # results never to be published

    @property
    def running(self) -> int:
        """How many early renders occupy a worker."""
        return len(self._running)

    def flights(self) -> list[Flight]:
        """Early renders whose result has not come back."""
        return list(self._running)

    def held(self) -> list[str]:
        """Charts with an early render that is still current."""
        return list(self._held)

    def take_dropped(self) -> list[RenderOutput | RenderFailure]:
        """The results of early renders dropped since the last call: the daemon deletes the
        files their workers staged (renderer.render.files.discard)."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def _discard(self, flight: Flight) -> None:
        flight.discard = True
        if flight.outcome is not None:
            self._dropped.append(flight.outcome)
            flight.outcome = None

    def changed(self, name: str, closed: bool) -> None:
        """An event for the chart's inputs: its early render (if any) read old files."""
        flight = self._held.pop(name, None)
        if flight is not None:
            self._discard(flight)
        if closed:
            self._wanted.add(name)
        else:
            self._wanted.discard(name)

    def window_over(self, name: str) -> None:
        """The chart's quiet window has ended: it may have an early render in its next one."""
        self._tried.discard(name)

    def candidates(self) -> list[str]:
        """Charts to render early now, once each (the daemon checks their timers and workers)."""
        wanted, self._wanted = self._wanted, set()
        return sorted(n for n in wanted if n not in self._held and n not in self._tried)

    def started(self, name: str, flight: Flight) -> None:
        flight.early = True
        self._held[name] = flight
        self._running.add(flight)
        self._tried.add(name)

    def take(self, name: str, current: str, queued: bool) -> Flight | None:
        """The chart's early render, to become its render, if it is still current.

        `current` is the chart's fingerprint now and `queued` whether its timer still waits to
        start. The flight returned is an ordinary one from now on: its `outcome` is set if its
        result has come back already.
        """
        flight = self._held.pop(name, None)
        if flight is None:
            return None
        if not same(flight.fingerprint, current) or not queued:
            self._discard(flight)
            return None
        flight.early = False
        self._running.discard(flight)
        log.debug("%s: inputs quiet since its early render started; that render is the one", name)
        return flight

    def finished(self, name: str, flight: Flight, outcome: RenderOutput | RenderFailure) -> None:
        """An early render's result came back: held while still current, else dropped."""
        self._running.discard(flight)
        if not flight.discard and self._held.get(name) is flight:
            flight.outcome = outcome
        else:
            log.debug("%s: dropped an early render, its inputs changed while it ran", name)
            self._dropped.append(outcome)

    def drop_all(self) -> None:
        """The board changed: every chart renders again in the ordinary way."""
        for flight in self._held.values():
            self._discard(flight)
        self._held.clear()
