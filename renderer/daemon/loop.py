"""`plotboard run`: the daemon that keeps every chart current for as long as it runs.

One thread (the caller's) runs the loop; everything else only wakes it (renderer.daemon.wake). The
watcher's callback records changed paths, finished renders arrive through a queue, and
signals only set flags. Each turn of the loop publishes finished renders, feeds changes to
the per-chart timers (renderer.daemon.schedule), starts the renders whose time has come (at most one
queued per worker beyond those running, so a worker never idles between two renders while a
change to one chart never waits behind a long queue of others), starts early renders for
files a writer has just closed (renderer.daemon.early) and, batched (renderer.daemon.pagekeeper), rewrites
state.json, status.json and index.html.

The daemon depends on threads besides its own: the render pool's dispatcher (or the Dask
client's watcher), the control server's and the --serve server's. Each runs guarded
(renderer.threads): one that dies only records its name and wakes the loop, which then stops
with exit status 1, as gunicorn's arbiter halts, so that a supervisor starts a whole daemon again
rather than one that fails every render.

The daemon holds the board's lock (renderer.store.lock) for its whole life, so it is the only writer
of the output folder and of `.plotboard/`; a `build` meanwhile hands its work to it
(renderer.daemon.control, renderer.daemon.builds).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from renderer.daemon import repair_check, sweep, upkeep

from renderer.daemon.builds import BuildRequests
from renderer.board.model import Board
from renderer.board.config import expand_again, load_board
from renderer.board.families import members_changed
from renderer.daemon.dispatch import BURST_AHEAD, BURST_TURN, Dispatcher
from renderer.daemon.early import EarlyRenders
from renderer.daemon.executor_set import ExecutorSet
from renderer.errors import PlotboardError
from renderer.executors.factory import require_executor
from renderer.daemon.flight import Flight, InFlight
from renderer.daemon.outward import Outward
from renderer.daemon.zoom import Zoom

from renderer.render.jobs import FailureKind, RenderFailure, RenderOutput
from renderer.store.lock import BUILD_WAIT, RUN, BoardLock, board_lock
from renderer.daemon.pagekeeper import PageKeeper
from renderer.pages.model import check_use
from renderer.pages.write import pages_intact
from renderer.publish.hook import require_publisher
from renderer.render.files import discard
from renderer.daemon.reload import compare, keep_output, needs_new_executor
from renderer.serve.server import serve_board
from renderer.board.durations import next_due
from renderer.daemon.schedule import Scheduler
from renderer.store.records import ChartRecord
from renderer.store.fingerprints import expand_inputs, fingerprint
from renderer.text import count
from renderer.daemon.wake import Requests, ThreadDied, Wake, signals_to
from renderer.daemon.watch import Matcher, Watcher, plan
from renderer.board.windows import held_until
from renderer.store.workspace import forget_removed, prepare, publish_outcome

log = logging.getLogger("plotboard")

PAGES_REST = 0.05  # a render starting sooner than this is part of the same burst
REPLAN_EVERY = 5.0  # seconds between checks that every watched folder still exists
DRAIN_GRACE = 5.0  # beyond render_timeout, how long a stop waits for renders in flight
STOP_POLL = 0.2  # how often a daemon run from another thread looks at its stop event
MAX_SLEEP = 60.0
EXIT_CRASHED = 1  # an unexpected error ended the loop, or a thread died: the supervisor should restart us


def run(
    config_path: str | os.PathLike, serve: int | tuple[str, int] | None = None, stop: threading.Event | None = None,
    poll: bool = False,
) -> int:
    """Run the daemon until SIGTERM/SIGINT (or `stop` is set); returns the exit status.

    `serve` (PORT, or (HOST, PORT)) also serves the output folder and /metrics; `poll` watches inputs by
    polling instead of inotify. Signals are handled only when called from the main thread.
    """
    board = load_board(config_path)
    check_use(board)
    require_executor(board)
    require_publisher(board)
    return Daemon(board, Path(config_path), stop=stop, poll=poll).run(serve)


class Daemon:
    """The state of one `plotboard run`."""

    def __init__(self, board: Board, config_path: Path, stop: threading.Event | None = None,
                 poll: bool = False) -> None:
        self.board = board
        self.config_path = config_path
        self.poll = poll
        self.clock = time.time
        self.scheduler = Scheduler(self.clock)
        self.records: dict[str, ChartRecord] = {}
        self.early = EarlyRenders()
        self.pages = PageKeeper()
        self.wake = Wake()
        self.requests = Requests(self.wake, stop)  # what signals and other threads ask of the loop
        self.builds = BuildRequests(self.clock)
        self.lock: BoardLock | None = None
        self.inflight = InFlight(self.wake)
        self.executors = ExecutorSet(self.requests.on_thread_death)
        self.dispatcher = Dispatcher(self.clock, self.scheduler, self.inflight, self.early, self.executors,
                                     self._publish)
        self.family_wanted = False  # a file a family's glob matches came or went: expand the board again
        self.replan_wanted = False
        self.next_replan = 0.0
        self.watcher: Watcher | None = None
        self.matcher = Matcher(board)
        self.sweep = sweep.Sweep()  # the periodic check for changes no event reported
        self.repairs = repair_check.Repair(lambda name: self.pages.batch.dirty(self.clock(), name))  # files gone
        self.outward = Outward(board, self.clock, self.wake, self.requests.on_thread_death,  # metrics, alerts, [publish]
                               queued=lambda: self.scheduler.wanted)
        self.zoom = Zoom(self.wake)  # GET /render/NAME.png: on demand, on workers the schedule leaves idle

    # -- life cycle ---------------------------------------------------------------------------

    def run(self, serve: int | tuple[str, int] | None = None) -> int:
        with ExitStack() as stack:
            stack.enter_context(self.wake)
            stack.enter_context(signals_to(self.requests.on_signal, self.wake))
            self.lock = stack.enter_context(board_lock(self.board, RUN, wait=BUILD_WAIT, cancel=self.requests.stop_requested))
            if self.lock is None:
                log.info("stopped before the board was free")
                return 0
            stack.enter_context(self.outward.publishing)  # stopped after the last write of the pages
            stack.callback(self._shutdown)
            # Listening before "run:" is logged: a build started then is answered (once the loop runs).
            stack.enter_context(self.builds.listen(self.board.path, self.wake, self.requests.on_thread_death))
            self.pages.problems(self.builds.problems(), self.clock())  # on status.json and the page until solved
            self._start(stack)
            if serve is not None:
                stack.enter_context(serve_board(self.board.output, serve, self.requests.on_thread_death,
                                                 {**self.outward.metrics.routes, **self.zoom.routes}))
            try:
                self._loop()
                self._drain()
            except ThreadDied as exc:  # logged with its traceback by the thread itself
                log.error("%s; stopping (exit status %d) so that a supervisor can restart it", exc, EXIT_CRASHED)
                self.requests.stopping = True
                return EXIT_CRASHED
            except Exception:  # noqa: BLE001 - the guard: log it, clean up, let the supervisor restart us
                log.exception("unexpected error in the daemon's loop; stopping (exit status %d) so that "
                              "a supervisor can restart it", EXIT_CRASHED)
                self.requests.stopping = True
                return EXIT_CRASHED
        log.info("stopped")
        return 0

    def _start(self, stack: ExitStack) -> None:
        self.records = prepare(self.board)
        self.records.loaded = None  # only a build reuses the bytes read (renderer.build); no need to keep them
        self.outward.start(stack, self.board, self.records, self.pages)
        self.watcher = stack.enter_context(Watcher(self.wake, poll=self.poll,
                                                   wanted=lambda path: self.matcher.wanted(path)))
        self.watcher.watch(plan(self.board))
        self.next_replan = self.clock() + REPLAN_EVERY
        self.executors.use(self.board)
        now = self.clock()
        seen: dict[str, tuple[int, int] | None] = {}  # the plot module is looked at once, not once a chart
        for chart in self.board.charts:
            upkeep.add_chart(self.board, self.records, self.scheduler, chart, now, seen=seen)
            self.pages.track(chart, self.records.get(chart.name))
        self._write_pages(now)
        log.info("run: %s, watching %s (%s), pid %d", count(len(self.board.charts), "chart"),
                 count(len(self.watcher.folders()), "folder"), self.watcher.mode, os.getpid())

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.requests.stop_requested():
            self.requests.check_threads(len(self.inflight) + self.early.running)
            turn = time.monotonic()  # a duration, not a time of day: not the clock passed in
            self._take_results()
            self._take_changes()
            self._take_builds()
            if self.requests.reload or self.family_wanted:
                self._reload(expand_only=not self.requests.reload)
                self.requests.reload = self.family_wanted = False
            now = self.clock()
            if self.replan_wanted or now >= self.next_replan:
                self._replan(rescan=self.replan_wanted)
            self._dispatch(ahead=BURST_AHEAD if self.dispatcher.backlog else 0.0)
            self.zoom.step(self.board, self.executors.current, self.board.workers - len(self.inflight) - self.early.running)
            self.outward.step()
            self._maybe_write_pages()
            if self.dispatcher.backlog and not self.requests.stopping:
                time.sleep(max(0.0, turn + BURST_TURN - time.monotonic()))  # a signal still lands at once
            self.wake.wait(self._timeout())

    def _timeout(self) -> float:
        now = self.clock()
        wakeup = self.scheduler.next_wakeup()
        if wakeup is not None and wakeup <= self.dispatcher.dispatched_at:
            wakeup = None  # ready but no worker free: a finished render wakes the loop
        times = [t for t in (wakeup, self.next_replan) if t is not None]
        times += self.pages.wakeups(now) + self.outward.wakeups()
        timeout = max(0.0, min(times) - now) if times else MAX_SLEEP
        if self.requests.external_stop is not None:
            timeout = min(timeout, STOP_POLL)
        return min(timeout, MAX_SLEEP)

    def _take_changes(self) -> None:
        for change in self.watcher.take():
            if change.is_dir:
                self.replan_wanted = True
                continue
            self.family_wanted = self.family_wanted or self.matcher.family_changed(change.path)
            for name in self.matcher.charts(change.path):
                if name in self.scheduler:
                    self.scheduler.change(name, moved=change.moved)
                    self.early.changed(name, closed=change.closed)

    def _take_builds(self) -> None:
        want = partial(upkeep.want_render, self.board, self.records, self.scheduler, now=self.clock())
        if self.builds.take(lambda: {c.name: c.window_of for c in self.board.charts}, want):
            self.pages.urgent(self.clock())

    def _replan(self, rescan: bool) -> None:
        """Move watches to folders that appeared or vanished; with rescan, render charts whose
        inputs changed while no watch could see them."""
        self.replan_wanted = False
        self.next_replan = self.clock() + REPLAN_EVERY
        self.lock.refresh()
        self.builds.retry()
        self.pages.problems(self.builds.problems(), self.clock())
        folders = plan(self.board)
        if folders != self.watcher.folders():
            self.watcher.watch(folders)
            rescan = True
        self.repairs.check(self.board, self.records, self.scheduler, self.clock())
        if not pages_intact(self.board):
            self.pages.urgent(self.clock())
        if rescan:
            upkeep.rescan(self.board, self.records, self.scheduler)
        else:
            self.sweep.step(self.board, self.records, self.scheduler, REPLAN_EVERY, self.clock())
        self.family_wanted = self.family_wanted or members_changed(self.board)  # every 5 s: a backstop

    def _dispatch(self, ahead: float = 0.0) -> None:
        if not self.requests.stopping:
            self.dispatcher.dispatch(self.board, self.records, ahead)

    def _take_results(self) -> None:
        for name, flight, outcome in self.inflight.take():
            if flight.early:
                self.early.finished(name, flight, outcome)
            else:
                self._publish(name, flight, outcome)
        for outcome in self.early.take_dropped():
            self._drop(outcome)
        self.executors.close_idle(self.inflight.executors() + [f.executor for f in self.early.flights()])

    def _drop(self, outcome: RenderOutput | RenderFailure) -> None:
        """A render that will not be published: delete the files its worker staged."""
        if isinstance(outcome, RenderOutput):
            discard(self.board.output, outcome.files)

    def _publish(self, name: str, flight: Flight, outcome: RenderOutput | RenderFailure) -> None:
        now = self.clock()
        if flight.discard or name not in self.scheduler:
            log.info("discarded the render of %s: the chart was removed", name)
            self._drop(outcome)
            return
        if isinstance(outcome, RenderFailure):
            stopping = self.requests.stopping or self.requests.thread_died
            if stopping and outcome.kind is FailureKind.WORKER_DIED:
                # Stopping with the whole process group (supervisord's stopasgroup): the render
                # was interrupted, not broken; the chart stays out of date for the next start.
                log.info("render of %s interrupted by the shutdown", name)
                return
            if not outcome.duration_ms:
                outcome = dataclasses.replace(outcome, duration_ms=(now - flight.started) * 1000)
        if outcome.duration_ms:
            self.dispatcher.rendered(outcome.duration_ms / 1000)
        try:
            ok = publish_outcome(self.board, self.records, flight.fingerprint, outcome, flight.trigger, now, logging.DEBUG)
        except PlotboardError as exc:
            log.error("cannot publish %s: %s", name, exc)
            ok = False
        chart, record = self.board.chart(name), self.records.setdefault(name, ChartRecord())
        scheduled = next_due(chart, record.rendered_at) if record.rendered_at is not None else None
        self.scheduler[name].finish(now, ok, record.consecutive_failures, scheduled)
        self.scheduler[name].hold_until = held_until(chart, record.rendered_at)
        self.builds.published(name, ok, flight.dispatched_at)
        self.pages.published(now, chart, record, ok)
        self.outward.published(chart, record, ok, outcome.duration_ms / 1000)
        if ok:
            self.sweep.rendered(name, flight.files)

    # -- pages -------------------------------------------------------------------------------

    def _maybe_write_pages(self) -> None:
        now = self.clock()
        self.outward.publishing.turn(self.pages.batch, now)
        at_rest = self._at_rest(now)
        if self.pages.due(now, at_rest):
            self._dispatch(ahead=max(self.pages.took, BURST_AHEAD if self.dispatcher.backlog else 0.0))
            self._write_pages(now, at_rest)

    def _at_rest(self, now: float) -> bool:
        """No render in flight and none about to start."""
        if self.inflight:
            return False
        wakeup = self.scheduler.next_wakeup()
        return wakeup is None or wakeup > now + PAGES_REST

    def _write_pages(self, now: float, at_rest: bool = False) -> None:
        self.outward.publishing.before_pages(self.pages.model)
        if self.pages.write(self.board, self.records, now, final=self.requests.stopping, at_rest=at_rest):
            self.builds.answer_done()
        self.outward.publishing.wrote_pages()

    # -- charts and reload -------------------------------------------------------------------

    def _reload(self, expand_only: bool = False) -> None:
        """Read the board file again (SIGHUP), or with `expand_only` expand its families again."""
        try:
            new = expand_again(self.board) if expand_only else load_board(self.config_path)
            if not expand_only:
                check_use(new)
        except PlotboardError as exc:
            log.error("%s failed, keeping the board as it was:\n%s",
                      "expanding the families" if expand_only else "reload", exc)
            return
        old = self.board
        new = keep_output(old, new)
        if needs_new_executor(old, new):
            try:
                self.executors.use(new)
            except PlotboardError as exc:
                log.error("reload failed, keeping the board as it was:\n%s", exc)
                return
        now = self.clock()
        self.board = new
        self.matcher = Matcher(new)
        change = compare(old, new)
        self.early.drop_all()
        for name in change.removed:
            self.scheduler.remove(name)
            self.pages.forget(name)
            self.builds.removed(name)
            self.inflight.discard(name)
        try:
            forget_removed(new, self.records)
        except PlotboardError as exc:
            log.error("reload: %s", exc)
        for chart in upkeep.add_and_update(new, self.records, self.scheduler, change, now):
            self.pages.track(chart, self.records.get(chart.name))
        self._replan(rescan=False)
        self.outward.reloaded(new, self.records)
        self.pages.urgent(now)
        log.info("%s %s: %s", "families of" if expand_only else "reloaded", self.config_path, change.summary())

    # -- stopping ----------------------------------------------------------------------------

    def _drain(self) -> None:
        """Let the renders in flight finish (each bounded by render_timeout) and publish them."""
        self.zoom.close()  # on-demand requests are answered 503 while the server still runs
        for name in self.early.held():  # a started render that is still current counts as in flight
            chart = self.board.chart(name)
            self.dispatcher.take_early(name, fingerprint(self.board, chart, expand_inputs(chart)), self.clock())
        if self.inflight:
            log.info("stopping: waiting for %d render(s) in flight", len(self.inflight))
        deadline = self.clock() + self.board.render_timeout + DRAIN_GRACE
        while self.inflight and not self.requests.hard_stop and self.clock() < deadline:
            self.requests.check_threads(len(self.inflight) + self.early.running)
            self._take_results()
            if self.inflight:
                self.wake.wait(min(STOP_POLL, max(0.0, deadline - self.clock())))
        self._take_results()
        if self.inflight:
            log.warning("stopping: abandoning %d render(s): %s", len(self.inflight), ", ".join(self.inflight.by_chart))

    def _shutdown(self) -> None:
        """Close the executors and write the pages a last time (the watcher has stopped)."""
        abandon = bool(self.inflight or self.early.running or self.zoom.rendering)  # early, on-demand: never waited for
        started = self.executors.current is not None
        self.executors.close_all(wait=not abandon)
        self.inflight.clear()
        if started:
            self._write_pages(self.clock())
        self.builds.answer_all(error="plotboard run stopped before the build's renders were done")
