"""When charts render: `every`/`cron` due times, and the per-chart render state machine.

Each chart of a running daemon has one ChartTimer, an explicit state machine driven by times
passed in (the daemon passes its clock's readings; tests pass made-up ones):

    IDLE ──change / request / schedule or retry time reached──► QUEUED ──start()──► RENDERING
      ▲                                                            ▲                   │
      └──────────────── finish(), nothing more wanted ─────────────┼───────────────────┘
                                                                   └── finish(), a change came
                                                                       in during the render

At most one render is in flight and one queued per chart: changes during a render only mark
the one queued render. A burst of changes is debounced: the render starts once the inputs
have been quiet for `quiet` seconds, but no later than `ceiling` seconds after the first
change, so a file written continuously still renders about once a second. A file moved into
place (how careful producers and editors save) is complete at once, so it skips the quiet
window. A chart that keeps failing retries with capped exponential backoff; its schedule
waits until it succeeds again, while a change still retries it at once.
"""

from __future__ import annotations

import heapq
import itertools
import time
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Iterator

from renderer.board.triggers import LIMITED, Trigger

log = logging.getLogger("plotboard")


QUIET = 0.2  # seconds without changes before a render starts
CEILING = 1.0  # longest a render waits for changes to stop
BACKOFF_BASE = 1.0  # first retry of a failing chart, doubled at every further failure
BACKOFF_CAP = 300.0  # longest wait between retries



class TimerState(StrEnum):
    IDLE = "idle"  # nothing to render until a change, a request, the schedule or a retry
    QUEUED = "queued"  # a render is wanted; it starts once due (quiet window, held window)
    RENDERING = "rendering"  # its render is in flight; a change now queues one more


IDLE, QUEUED, RENDERING = TimerState.IDLE, TimerState.QUEUED, TimerState.RENDERING


def backoff(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait before retrying a chart after `failures` failures in a row."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2 ** min(failures - 1, 60))


@dataclass
class ChartTimer:
    """The render state machine of one chart; every method takes the current time."""

    name: str
    quiet: float = QUIET
    ceiling: float = CEILING
    state: TimerState = IDLE  # changed only by _to, which logs every transition
    reason: Trigger | None = None  # trigger of the queued render
    first_change: float | None = None  # debounce window of the queued render
    last_change: float | None = None
    asap_at: float | None = None  # a move into place or an explicit request: no quiet window
    scheduled_at: float | None = None  # next every/cron time
    retry_at: float | None = None  # next retry while failing
    failures: int = 0  # failures in a row
    hold_until: float | None = None  # a later time window: changes and schedules wait until then
    # (fingerprint, inputs, files_seen) as the daemon computed them when it queued the render at
    # start or on a reload; any change forgets them, so the render starts from what they describe.
    prepared: tuple[str, list[str], tuple] | None = None

    def held(self, now: float) -> bool:
        """Whether the queued render waits out a later time window's interval (renderer.board.windows)."""
        return (self.hold_until is not None and now < self.hold_until
                and (self.reason or Trigger.CHANGE) in LIMITED)

    def __setattr__(self, key: str, value: object) -> None:
        object.__setattr__(self, key, value)
        owner = self.__dict__.get("_owner")
        if owner is not None:
            owner._dirty[self.name] = None  # its due time may have moved: the scheduler looks again

    def change(self, now: float, moved: bool = False) -> None:
        """An input (or the plot module) changed; `moved` when a file was moved into place."""
        self.prepared = None
        if self.first_change is None:
            self.first_change = now
        self.last_change = now
        if moved:
            self.asap_at = now if self.asap_at is None else min(self.asap_at, now)
        self._want(Trigger.MOVE if moved else Trigger.CHANGE, upgrade=moved)

    def request(self, now: float, reason: Trigger, upgrade: bool = False) -> None:
        """Render as soon as possible (at start, after a reload); with upgrade, `reason`
        replaces the queued render's trigger (a build's request is never skipped as a change)."""
        self.asap_at = now if self.asap_at is None else min(self.asap_at, now)
        self._want(reason, upgrade)

    def _want(self, reason: Trigger, upgrade: bool = False) -> None:
        if self.reason is None or upgrade:
            self.reason = reason
        if self.state == IDLE:
            self._to(QUEUED)

    def _to(self, state: TimerState) -> None:
        """The one place a timer changes state: logged (at DEBUG) with the trigger it is for."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s -> %s (%s)", self.name, self.state, state, self.reason)
        owner = self.__dict__.get("_owner")
        if owner is not None:
            owner.wanted += (state != IDLE) - (self.state != IDLE)
        self.state = state

    def timed_at(self) -> float | None:
        """When the schedule (or, while failing, the next retry) comes due."""
        return self.retry_at if self.failures else self.scheduled_at

    def tick(self, now: float) -> None:
        """IDLE to QUEUED when the schedule or a retry has come due."""
        at = self.timed_at()
        if self.state == IDLE and at is not None and at <= now:
            self.reason = Trigger.RETRY if self.failures else Trigger.SCHEDULE
            self.asap_at = at
            self._to(QUEUED)

    def due(self, now: float) -> float | None:
        """When the queued render may start (IDLE: when the next timed render comes due)."""
        if self.state == RENDERING:
            return None
        if self.state == IDLE:
            return self.timed_at()
        times = []
        if self.asap_at is not None:
            times.append(self.asap_at)
        if self.first_change is not None:
            if now < self.first_change or now < self.last_change:
                return now  # the clock went back: don't wait for a window that may never end
            times.append(min(self.last_change + self.quiet, self.first_change + self.ceiling))
        at = min(times) if times else now
        return max(at, self.hold_until) if self.held(now) else at

    def ready(self, now: float) -> bool:
        """QUEUED and its time has come."""
        if self.state != QUEUED:
            return False
        due = self.due(now)
        return due is not None and due <= now

    def start(self, now: float) -> Trigger:
        """QUEUED to RENDERING; returns the trigger. Changes from now on queue another render."""
        if self.state != QUEUED:
            raise RuntimeError(f"{self.name}: start() in state {self.state}")
        reason = self.reason or Trigger.CHANGE
        self._to(RENDERING)
        self._clear()
        return reason

    def skip(self, now: float) -> None:
        """QUEUED to IDLE: the daemon found nothing new to render."""
        if self.state == QUEUED:
            self._to(IDLE)
            self._clear()

    def finish(self, now: float, ok: bool, failures: int, scheduled_at: float | None) -> None:
        """RENDERING to QUEUED (a change came in meanwhile) or IDLE; `failures` in a row so far."""
        if self.state != RENDERING:
            raise RuntimeError(f"{self.name}: finish() in state {self.state}")
        self.failures = 0 if ok else max(failures, 1)
        self.retry_at = None if ok else now + backoff(self.failures)
        self.scheduled_at = scheduled_at
        self._to(QUEUED if self.reason is not None else IDLE)

    def _clear(self) -> None:
        self.reason = None
        self.first_change = self.last_change = self.asap_at = None


class Scheduler:
    """The timers of every chart, read against one clock.

    Due times sit in a heap, and a timer whose fields change is marked dirty (ChartTimer's
    __setattr__) and pushed again with its new due time at the next look: a turn of the
    daemon's loop costs time in proportion to the timers that changed or came due, not to the
    number of charts. Entries of a timer that changed since are skipped when they surface.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.timers: dict[str, ChartTimer] = {}
        self._heap: list[tuple[float, int, str, int]] = []  # (due, tie-break, name, version)
        self._version: dict[str, int] = {}
        # Timers to look at again, as an ordered set: charts due at the same moment start in the
        # order they were added or changed (the board's at start, so a cold board fills group by
        # group and each page write rewrites only the groups that changed, not every one).
        self._dirty: dict[str, None] = {}
        self._seq = itertools.count()
        self._last_now = float("-inf")
        self.wanted = 0  # timers QUEUED or RENDERING: renders wanted and not yet finished (an int: any thread may read it)

    def add(self, name: str) -> ChartTimer:
        timer = self.timers[name] = ChartTimer(name)
        object.__setattr__(timer, "_owner", self)
        self._dirty[name] = None
        return timer

    def remove(self, name: str) -> None:
        timer = self.timers.pop(name, None)
        if timer is not None:
            object.__setattr__(timer, "_owner", None)
            self.wanted -= timer.state != IDLE
        self._version.pop(name, None)
        self._dirty.pop(name, None)

    def __getitem__(self, name: str) -> ChartTimer:
        return self.timers[name]

    def __contains__(self, name: str) -> bool:
        return name in self.timers

    def change(self, name: str, moved: bool = False) -> None:
        self.timers[name].change(self.clock(), moved)

    def request(self, name: str, reason: Trigger) -> None:
        self.timers[name].request(self.clock(), reason)

    def _look(self, now: float) -> None:
        """Push the dirty timers' new due times (all of them if the clock went back)."""
        if now < self._last_now:
            self._dirty.update(dict.fromkeys(self.timers))  # due times were judged against a later clock
        self._last_now = now
        for name in self._dirty:
            timer = self.timers.get(name)
            if timer is None:
                continue
            version = self._version[name] = self._version.get(name, 0) + 1
            key = timer.timed_at() if timer.state == IDLE else timer.due(now)
            if key is not None:
                heapq.heappush(self._heap, (key, next(self._seq), name, version))
        self._dirty.clear()
        if len(self._heap) > 2 * len(self.timers) + 64:  # mostly outdated entries: rebuild
            self._heap = [e for e in self._heap if self._version.get(e[2]) == e[3]]
            heapq.heapify(self._heap)

    def due_now(self) -> Iterator[str]:
        """Charts whose render may start now, longest waiting first, one at a time: a caller
        that stops early leaves the rest for the next look."""
        now = self.clock()
        self._look(now)
        while self._heap and self._heap[0][0] <= now:
            _, _, name, version = heapq.heappop(self._heap)
            if self._version.get(name) != version:
                continue  # changed since: its newer entry is elsewhere in the heap
            timer = self.timers[name]
            self._dirty[name] = None  # looked at again next time, whatever the caller does
            timer.tick(now)
            if timer.ready(now):
                yield name

    def ready(self) -> list[str]:
        """Every chart whose render may start now, longest waiting first."""
        return list(self.due_now())

    def next_wakeup(self) -> float | None:
        """The earliest time some chart's state can change without a new event."""
        self._look(self.clock())
        while self._heap and self._version.get(self._heap[0][2]) != self._heap[0][3]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
