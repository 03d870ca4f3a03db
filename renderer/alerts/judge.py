"""Which changes of state each alert sends: a pure module, the clock passed in.

A chart's state, as an alert sees it, is judged from its records (its windows' too, the worst
of them): `error` once its last `after` renders in a row failed (fewer failures are not looked
at), `pending` before its first good render, `stale` once its last good render is older than
`stale_after`, else `ok`. The judge keeps, per alert and chart, what the receiver was last told
(`told`: error, stale, or ok when absent) and sends the difference between that and the state
now, so that what was sent is never sent again (after a restart too: `told` is kept in the
bookkeeping) and what changed meanwhile is sent:

- a chart in error or stale that the receiver was not told so: an `error` or `stale` event
  (when the alert's `on` has it). A chart that never rendered and fails is an `error` event
  (pending -> error); its first good render is no event.
- a chart back to ok after a trouble the receiver was told: `recovered` (or, without
  "recovered" in `on`, the receiver's view is set back to ok silently).
- `repeat`: while the receiver was told a trouble that lasts, the same event again every
  `repeat` (its `previous` is the state itself).
- a change undone within `group_wait` (an error fixed before its message left) is not sent;
  a chart that leaves the board (removed, or no longer matched by `charts`) sends nothing.

Changes are collected per alert for `group_wait` from the first one, then go out as one
message; while an alert's message is still being sent (retried), changes wait and go out
together after it. The daemon asks `next_deadline()` for the next time it must look (a chart
turning stale with nothing rendered, a repeat, a group's end): charts turning stale and repeats
sit in heaps, so the work follows what changed, not the size of the board.
"""

from __future__ import annotations

import fnmatch
import heapq
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from renderer.board.alert_options import Alert
from renderer.board.model import Board, Chart
from renderer.store.history import stamp_name, wanted
from renderer.store.records import ChartRecord
from renderer.text import iso

TROUBLE = ("error", "stale")
_WORSE = {"ok": 0, "pending": 1, "stale": 2, "error": 3}
Told = dict[str, dict[str, tuple[str, float]]]  # alert -> chart -> (state told, when)


@dataclass(frozen=True)
class Seen:
    """A chart's state as one alert judged it, since when, its error, and the state before."""

    state: str
    since: float | None
    error: str | None
    previous: str


@dataclass
class Message:
    """One message of an alert: its events (each as the webhook body has it), and what the
    receiver knows once it is delivered (chart -> (state, when sent))."""

    alert: str
    events: list[dict[str, Any]]
    told: dict[str, tuple[str, float]]


def _one(chart: Chart, rec: ChartRecord | None, after: int, now: float) -> tuple[str, float | None, str | None]:
    if rec is None:
        return "pending", None, None
    if rec.error and rec.consecutive_failures >= after:
        return "error", rec.failed_at, rec.error
    if rec.rendered_at is None:
        return "pending", None, None
    if chart.stale_after is not None and now - rec.rendered_at > chart.stale_after:
        return "stale", rec.rendered_at + chart.stale_after, None
    return "ok", rec.rendered_at, None


def judge_chart(board: Board, name: str, records: dict[str, ChartRecord], after: int,
                now: float) -> tuple[str, float | None, str | None]:
    """(state, since, error) of a chart as shown (the worst of its windows')."""
    found = None
    for chart in board.windows_of(name) or [board.chart(name)]:
        one = _one(chart, records.get(chart.name), after, now)
        if found is None or _WORSE[one[0]] > _WORSE[found[0]]:
            found = one
    return found


def stale_deadline(board: Board, name: str, records: dict[str, ChartRecord], now: float) -> float | None:
    """The next moment after `now` one of the chart's windows turns stale, or None."""
    times = []
    for chart in board.windows_of(name) or [board.chart(name)]:
        rec = records.get(chart.name)
        if chart.stale_after is not None and rec is not None and rec.rendered_at is not None:
            at = rec.rendered_at + chart.stale_after
            if at >= now:
                times.append(at)
    return min(times, default=None)


class Judge:
    """The alerts' view of the board (see the module's docstring). `records` is read, never
    written; `told` is the bookkeeping's, updated as messages are delivered."""

    def __init__(self, board: Board, records: dict[str, ChartRecord], told: Told, now: float) -> None:
        self.records = records
        self.told = told
        self.busy: dict[str, Message] = {}  # alert -> its message being sent
        self.given_up: Told = {}  # what could not be delivered: not tried again until it changes
        self.told_changed = False  # `told` changed without a message (to be saved)
        self._stale: list[tuple[float, str]] = []
        self._stale_at: dict[str, float] = {}
        self._repeat: list[tuple[float, str, str]] = []
        self.board = board
        self.set_board(board, now)

    # -- the board -----------------------------------------------------------------------------

    def set_board(self, board: Board, now: float) -> None:
        """Follow this board (at start and after a reload): every followed chart is judged again
        (what is unchanged sends nothing); what left the board is forgotten, without an event."""
        self.board = board
        self.alerts: dict[str, Alert] = {a.name: a for a in board.alerts}
        shown = [c.name for c in board.shown]
        self.index = {n: i for i, n in enumerate(shown)}
        self.alerts_of: dict[str, list[str]] = {}
        for alert in board.alerts:
            for name in shown:
                if any(fnmatch.fnmatchcase(name, g) for g in alert.charts):
                    self.alerts_of.setdefault(name, []).append(alert.name)
        for a in list(self.told):
            if a not in self.alerts:
                del self.told[a]
                self.told_changed = True
                continue
            for name in [n for n in self.told[a] if a not in self.alerts_of.get(n, ())]:
                del self.told[a][name]
                self.told_changed = True
        self.seen: dict[str, dict[str, Seen]] = {a: {} for a in self.alerts}
        self.dirty: dict[str, set[str]] = {a: set() for a in self.alerts}
        self.repeats: dict[str, set[str]] = {a: set() for a in self.alerts}
        self.flush_at: dict[str, float | None] = {a: getattr(self, "flush_at", {}).get(a) for a in self.alerts}
        self.busy = {a: m for a, m in self.busy.items() if a in self.alerts}
        self._stale, self._stale_at = [], {}
        for name in self.alerts_of:
            self._judge(name, now)
        self._repeat = []
        for a, charts in self.told.items():
            for name, (state, at) in charts.items():
                self._push_repeat(a, name, state, at)

    def changed(self, name: str, now: float) -> None:
        """A chart's (or one of its windows') record changed."""
        try:
            chart = self.board.chart(name)
        except KeyError:
            return
        name = chart.window_of or name
        if name in self.alerts_of:
            self._judge(name, now)

    def _judge(self, name: str, now: float) -> None:
        for a in self.alerts_of[name]:
            state, since, error = judge_chart(self.board, name, self.records, self.alerts[a].after, now)
            old = self.seen[a].get(name)
            if old is None or old.state != state:
                previous = old.state if old else self._basis(a, name)[0]
                if old is None and previous == "ok" and self._never_rendered(name):
                    previous = "pending"
                self.seen[a][name] = Seen(state, since, error, previous)
                self._mark(a, name, now)
            elif error != old.error:
                self.seen[a][name] = Seen(state, old.since, error, old.previous)
        at = stale_deadline(self.board, name, self.records, now)
        if at is None:
            self._stale_at.pop(name, None)
        elif self._stale_at.get(name) != at:
            self._stale_at[name] = at
            heapq.heappush(self._stale, (at, name))
            if len(self._stale) > 2 * len(self._stale_at) + 64:  # mostly outdated entries: rebuild
                self._stale = [(t, n) for n, t in self._stale_at.items()]
                heapq.heapify(self._stale)

    def _never_rendered(self, name: str) -> bool:
        return all(getattr(self.records.get(c.name), "rendered_at", None) is None
                   for c in self.board.windows_of(name) or [self.board.chart(name)])

    def _mark(self, a: str, name: str, now: float) -> None:
        self.dirty[a].add(name)
        if self.flush_at[a] is None:
            self.flush_at[a] = now + self.alerts[a].group_wait

    def _basis(self, a: str, name: str, tried: bool = True) -> tuple[str, float | None]:
        """What the receiver knows of the chart (or will, once the message being sent arrives);
        `tried`: or what a message given up tried to tell it (not to be tried again)."""
        busy = self.busy.get(a)
        if busy is not None and name in busy.told:
            return busy.told[name]
        for known in (self.given_up, self.told) if tried else (self.told,):
            if name in known.get(a, {}):
                return known[a][name]
        return "ok", None

    def _push_repeat(self, a: str, name: str, state: str, at: float) -> None:
        repeat = self.alerts[a].repeat if a in self.alerts else None
        if repeat is not None and state in TROUBLE:
            heapq.heappush(self._repeat, (at + repeat, a, name))

    # -- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the judge must look next (None: only when a record changes)."""
        while self._stale and self._stale_at.get(self._stale[0][1]) != self._stale[0][0]:
            heapq.heappop(self._stale)
        times = [t for a, t in self.flush_at.items() if t is not None and a not in self.busy]
        if self._stale:
            times.append(self._stale[0][0] + 0.001)  # stale is judged strictly after the moment
        if self._repeat:
            times.append(self._repeat[0][0])
        return min(times, default=None)

    def tick(self, now: float, flush_all: bool = False) -> list[Message]:
        """Judge what time changed (charts turned stale, repeats due) and give the messages due
        now (`flush_all`: every alert's changes now, whatever its group_wait: `build`)."""
        while self._stale and self._stale[0][0] < now:
            at, name = heapq.heappop(self._stale)
            if self._stale_at.get(name) == at:
                del self._stale_at[name]
                self._judge(name, now)
        while self._repeat and self._repeat[0][0] <= now:
            at, a, name = heapq.heappop(self._repeat)
            told = self.told.get(a, {}).get(name)
            if told is not None and a in self.alerts and told[1] + self.alerts[a].repeat == at:
                self.repeats[a].add(name)
                self._mark(a, name, now)
        messages = []
        for a, at in self.flush_at.items():
            if at is not None and (at <= now or flush_all) and a not in self.busy:
                message = self._flush(a, now)
                if message is not None:
                    self.busy[a] = message
                    messages.append(message)
        return messages

    def _flush(self, a: str, now: float) -> Message | None:
        alert = self.alerts[a]
        events, told = [], {}
        for name in sorted(self.dirty[a], key=lambda n: self.index.get(n, -1)):
            seen = self.seen[a].get(name)
            if seen is None or name not in self.index:
                continue
            basis = self._basis(a, name)[0]
            if seen.state not in TROUBLE:
                self.given_up.get(a, {}).pop(name, None)
            if seen.state in TROUBLE:
                if seen.state != basis and seen.state in alert.on:
                    events.append(self._event(name, seen.state, seen, seen.previous))
                    told[name] = (seen.state, now)
                elif seen.state == basis and name in self.repeats[a]:
                    events.append(self._event(name, seen.state, seen, seen.state))
                    told[name] = (seen.state, now)
            elif seen.state == "ok" and (basis := self._basis(a, name, tried=False)[0]) in TROUBLE:
                if "recovered" in alert.on:
                    events.append(self._event(name, "recovered", seen, basis))
                    told[name] = ("ok", now)
                else:
                    self.told.get(a, {}).pop(name, None)
                    self.told_changed = True
        self.dirty[a].clear()
        self.repeats[a].clear()
        self.flush_at[a] = None
        return Message(a, events, told) if events else None

    def _event(self, name: str, event: str, seen: Seen, previous: str) -> dict[str, Any]:
        chart = self.board.chart(name)
        return {"event": event, "chart": name, "title": chart.title, "group": chart.group, "state": seen.state,
                "previous": previous, "error": seen.error if seen.state == "error" else None,
                "at": iso(seen.since), "image": f"{name}.png",
                "url": urljoin(self.board.url, f"#{name}") if self.board.url else None,
                "moment": self._moment(name)}

    def _moment(self, name: str) -> str | None:
        """Where the image shown now will be found once replaced: the history view at its stamp."""
        rec = self.records.get(name)
        if not self.board.url or rec is None or rec.rendered_at is None or not wanted(self.board, name):
            return None
        return urljoin(self.board.url, f"#history-{name}@{stamp_name(rec.rendered_at)[:-len('.png')]}")

    # -- what became of a message --------------------------------------------------------------

    def delivered(self, message: Message, now: float) -> None:
        """The receiver has the message: it knows these states now."""
        self.busy.pop(message.alert, None)
        told = self.told.setdefault(message.alert, {})
        for name, (state, at) in message.told.items():
            self.given_up.get(message.alert, {}).pop(name, None)
            if name not in self.index:
                continue  # left the board meanwhile
            if state == "ok":
                told.pop(name, None)
            else:
                told[name] = (state, at)
                self._push_repeat(message.alert, name, state, at)

    def gave_up(self, message: Message) -> None:
        """The message could not be delivered: not tried again until the chart changes (nor
        recorded as told: a restart tries again)."""
        self.busy.pop(message.alert, None)
        self.given_up.setdefault(message.alert, {}).update(message.told)
