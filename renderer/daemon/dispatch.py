"""The daemon's dispatch policy: which due renders start now, on which executor, and how many
are queued ahead of the workers. Driven by the clock passed in.

One render is queued per worker beyond the one it runs, so a worker that finishes starts its
next render at once instead of waiting for the loop to publish and dispatch; before a page
write, enough for the write's duration at the recent render time. Early renders (renderer.daemon.early)
take only idle workers.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

from renderer.board.model import Board
from renderer.board.triggers import Trigger
from renderer.daemon.early import EarlyRenders
from renderer.daemon.executor_set import ExecutorSet
from renderer.daemon.flight import Flight, InFlight
from renderer.daemon.schedule import QUEUED, Scheduler
from renderer.daemon.upkeep import files_seen
from renderer.executors.pool import MAX_PAUSE
from renderer.render.jobs import RenderFailure, RenderOutput
from renderer.store.fingerprints import expand_inputs, fingerprint, same
from renderer.store.records import ChartRecord
from renderer.store.workspace import make_job

log = logging.getLogger("plotboard")

MAX_AHEAD = 64  # renders queued per worker at most, to keep it busy while the loop writes the pages
# With more renders due than the workers can take (a cold start, a reload of a big board), the
# loop turns at most this often and takes the results that came meanwhile together: a turn per
# result cost more than publishing it. Nobody waits for it: the pages follow 1 s later at best.
BURST_TURN = 0.05
# The render pool may keep finished renders this long before handing them over (renderer.executors.pool's
# MAX_PAUSE): during a burst the workers are given enough to render through it and a turn.
BURST_AHEAD = BURST_TURN + MAX_PAUSE
RETRIED_BY_CHANGE = (Trigger.CHANGE, Trigger.MOVE)  # a failing chart skips these when nothing is new


class Dispatcher:
    """Starts the renders the scheduler says are due, on the current executor."""

    def __init__(self, clock: Callable[[], float], scheduler: Scheduler, inflight: InFlight,
                 early: EarlyRenders, executors: ExecutorSet,
                 publish: Callable[[str, Flight, RenderOutput | RenderFailure], None]) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.inflight = inflight
        self.early = early
        self.executors = executors
        self.publish = publish  # an early render taken with its result already back
        self.render_s = 0.1  # the recent renders' duration (moving average)
        self.dispatched_at = 0.0
        self.backlog = False  # the last dispatch left due renders for want of free workers

    def rendered(self, duration_s: float) -> None:
        """A render took this long: the moving average that sizes the queue ahead."""
        self.render_s += 0.1 * (max(duration_s, 0.001) - self.render_s)

    def dispatch(self, board: Board, records: dict[str, ChartRecord], ahead: float = 0.0) -> None:
        """Start the renders that are due; `ahead`: seconds the loop is about to be busy for."""
        self.dispatched_at = self.clock()
        queued = 1 + min(MAX_AHEAD, math.ceil(ahead / self.render_s)) if ahead else 1
        capacity = (1 + queued) * board.workers - len(self.inflight) - self.early.running
        self.backlog = False
        for name in self.scheduler.due_now():
            if capacity <= 0:
                self.backlog = True
                break
            if name in self.inflight:
                continue  # a removed chart of that name is still rendering
            chart = board.chart(name)
            timer = self.scheduler[name]
            prepared, timer.prepared = timer.prepared, None
            if prepared is not None:
                current, inputs, files = prepared
            else:
                inputs = expand_inputs(chart)
                current, files = fingerprint(board, chart, inputs), files_seen(chart)
            rec = records.get(name)
            self.early.window_over(name)
            if (timer.failures and timer.reason in RETRIED_BY_CHANGE and rec is not None
                    and same(rec.failed_fingerprint, current)):
                timer.skip(self.clock())  # nothing new for a failing chart: wait for its retry
                continue
            now = self.clock()
            if self.take_early(name, current, now):
                if name in self.inflight:
                    capacity -= 1
                continue
            trigger = timer.start(now)
            flight = Flight(chart, current, trigger, now, self.executors.current, dispatched_at=now, files=files)
            self.inflight.add(name, flight)
            self.inflight.submit(self.executors.current, name, flight, make_job(board, chart, inputs))
            capacity -= 1
            log.debug("started %s trigger=%s", name, trigger)
        self.start_early(board)

    def start_early(self, board: Board) -> None:
        """Render charts whose input a writer has just closed, while their quiet window runs."""
        idle = board.workers - len(self.inflight) - self.early.running
        for name in self.early.candidates():
            if idle <= 0:
                return
            if name not in self.scheduler or name in self.inflight:
                continue
            timer = self.scheduler[name]
            if (timer.state != QUEUED or timer.reason != Trigger.CHANGE or timer.failures
                    or timer.held(self.clock())):
                continue
            chart = board.chart(name)
            inputs = expand_inputs(chart)
            flight = Flight(chart, fingerprint(board, chart, inputs), Trigger.CHANGE, self.clock(),
                            self.executors.current)
            self.early.started(name, flight)
            self.inflight.submit(self.executors.current, name, flight, make_job(board, chart, inputs))
            idle -= 1
            log.debug("started %s early, inside its quiet window", name)

    def take_early(self, name: str, current: str, now: float) -> bool:
        """Make the chart's early render its render, if it is still current (fingerprint
        `current`): the timer starts, and the result is published now or when it comes back."""
        flight = self.early.take(name, current, queued=self.scheduler[name].state == QUEUED)
        if flight is None:
            return False
        flight.trigger = self.scheduler[name].start(now)
        flight.dispatched_at = now
        if flight.outcome is not None:
            self.publish(name, flight, flight.outcome)
        else:
            self.inflight.add(name, flight)
        return True
