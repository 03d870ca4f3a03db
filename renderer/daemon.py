"""`plotboard run`: the daemon that keeps every chart current for as long as it runs.

One thread (the caller's) runs the loop; everything else only wakes it. The watcher's
callback records changed paths, finished renders arrive through a queue, and signals are
turned into flags plus a byte on a wake-up pipe, so no handler ever takes a lock the loop
might hold. Each turn of the loop publishes finished renders, feeds changes to the
per-chart timers (renderer.schedule), starts the renders whose time has come (at most one
queued per worker beyond those running, so a worker never idles between two renders while a
change to one chart never waits behind a long queue of others), starts early renders for
files a writer has just closed (published only if still current when the quiet window
ends: `_start_early`) and, batched, rewrites state.json, status.json and index.html.

Locking: the daemon holds the board lock (`.plotboard/lock`, "plotboard run") for its whole
life. It is the only writer of the output folder and of `.plotboard/` meanwhile: a `build`
started while it runs waits until it exits, then finds the state the daemon saved, so it
renders only what is really out of date.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import select
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from renderer.build import board_lock, forget_removed, make_job, publish_outcome
from renderer.config import Board, Chart, load_board
from renderer.errors import PlotboardError
from renderer.executors import require_executor
from renderer.jobs import FailureKind, RenderFailure, RenderOutput
from renderer.pages import write_pages
from renderer.publish import remove_temp_files
from renderer.schedule import QUEUED, RENDERING, Scheduler, next_due
from renderer.state import ChartRecord, expand_inputs, fingerprint, load_state, out_of_date, save_state
from renderer.watch import Matcher, Watcher, plan

log = logging.getLogger("plotboard")

PAGES_DELAY = 1.0  # longest a publish waits for state.json and the pages while renders go on
PAGES_REST = 0.05  # a render starting sooner than this is part of the same burst
REPLAN_EVERY = 5.0  # seconds between checks that every watched folder still exists
DRAIN_GRACE = 5.0  # beyond render_timeout, how long a stop waits for renders in flight
STOP_POLL = 0.2  # how often a daemon run from another thread looks at its stop event
POOL_KEYS = ("workers", "render_timeout", "executor", "scheduler")


def run(
    config_path: str | os.PathLike, serve: int | None = None, stop: threading.Event | None = None,
    poll: bool = False,
) -> int:
    """Run the daemon until SIGTERM/SIGINT (or `stop` is set); returns the exit status.

    `serve` also serves the output folder on 127.0.0.1:PORT; `poll` watches inputs by
    polling instead of inotify. Signals are handled only when called from the main thread.
    """
    board = load_board(config_path)
    require_executor(board)
    return Daemon(board, Path(config_path), stop=stop, poll=poll).run(serve)


@dataclass(eq=False)
class Flight:
    """A render in flight."""

    chart: Chart
    current: str  # the fingerprint of what it renders
    trigger: str
    started: float
    executor: object
    discard: bool = False  # its chart was removed meanwhile, or (early) its inputs changed since
    early: bool = False  # started inside the chart's quiet window; see Daemon._start_early
    outcome: RenderOutput | RenderFailure | None = None  # an early render's result, held


@dataclass
class _Wake:
    """A self-pipe: other threads and signal handlers wake the loop by writing a byte."""

    r: int = -1
    w: int = -1

    def open(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)

    def __call__(self) -> None:
        try:
            os.write(self.w, b"\0")
        except (BlockingIOError, OSError):
            pass  # full (a wake-up is pending anyway) or closed (shutting down)

    def wait(self, timeout: float | None) -> None:
        if timeout is None or timeout > 0:
            select.select([self.r], [], [], timeout)
        try:
            while os.read(self.r, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)
        self.r = self.w = -1


class Daemon:
    """The state of one `plotboard run`."""

    def __init__(self, board: Board, config_path: Path, stop: threading.Event | None = None,
                 poll: bool = False) -> None:
        self.board = board
        self.config_path = config_path
        self.external_stop = stop
        self.poll = poll
        self.clock = time.time
        self.scheduler = Scheduler(self.clock)
        self.records: dict[str, ChartRecord] = {}
        self.inflight: dict[str, Flight] = {}
        self.early: dict[str, Flight] = {}  # by chart: early renders that are still current
        self.early_running: set[Flight] = set()  # early renders whose result has not come back
        self.early_wanted: set[str] = set()  # charts whose input a writer has just closed
        self.early_tried: set[str] = set()  # charts that had their early render this window
        self.results: "queue.SimpleQueue[tuple[str, Flight, Future]]" = queue.SimpleQueue()
        self.wake = _Wake()
        self.stopping = False
        self.hard_stop = False
        self.reload_wanted = False
        self.replan_wanted = False
        self.pages_due: float | None = None
        self.pages_at = 0.0
        self.next_replan = 0.0
        self.dispatched_at = 0.0
        self.executor = None
        self.retired: list = []
        self.watcher: Watcher | None = None
        self.matcher = Matcher(board)

    # -- life cycle ---------------------------------------------------------------------------

    def run(self, serve: int | None = None) -> int:
        with board_lock(self.board, who="plotboard run"):
            self.wake.open()
            old_handlers = self._install_signals()
            server = None
            try:
                self._start()
                if serve is not None:
                    from renderer.serve import start_server

                    try:
                        server = start_server(self.board.output, serve)
                    except OSError as exc:
                        raise PlotboardError(f"cannot serve on 127.0.0.1:{serve}: {exc.strerror or exc}") from None
                    log.info("serving %s on http://127.0.0.1:%d/", self.board.output, serve)
                self._loop()
                self._drain()
            finally:
                self._shutdown()
                if server is not None:
                    server.shutdown()
                self._restore_signals(old_handlers)
                self.wake.close()
        log.info("stopped")
        return 0

    def _start(self) -> None:
        board = self.board
        board.output.mkdir(parents=True, exist_ok=True)
        static = board.output / "static"
        for folder in (board.output, board.state_dir) + (() if static.is_symlink() else (static,)):
            for name in remove_temp_files(folder):  # never through a planted static/ link
                log.info("removed leftover temporary file %s", folder / name)
        self.records = load_state(board)
        forget_removed(board, self.records)
        self.watcher = Watcher(self.wake, poll=self.poll)
        self.watcher.watch(plan(board))
        self.next_replan = self.clock() + REPLAN_EVERY
        self.executor = self._make_executor(board)
        now = self.clock()
        for chart in board.charts:
            self._add_chart(chart, now)
        self._write_pages(now)
        log.info("run: %d charts, watching %d folders (%s), pid %d",
                 len(board.charts), len(self.watcher.folders()), self.watcher.mode, os.getpid())

    def _make_executor(self, board: Board):
        from renderer.executors import make_executor

        return make_executor(board)

    def _install_signals(self) -> dict | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            handlers[sig] = signal.signal(sig, self._on_signal)
        handlers["wakeup_fd"] = signal.set_wakeup_fd(self.wake.w, warn_on_full_buffer=False)
        return handlers

    def _restore_signals(self, handlers: dict | None) -> None:
        if handlers is None:
            return
        signal.set_wakeup_fd(handlers.pop("wakeup_fd"))
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Flags only: the wake-up fd (set_wakeup_fd) wakes the loop.
        if signum == signal.SIGHUP:
            self.reload_wanted = True
        elif self.stopping:
            self.hard_stop = True
        else:
            self.stopping = True

    def _stop_requested(self) -> bool:
        if self.external_stop is not None and self.external_stop.is_set() and not self.stopping:
            self.stopping = True
        return self.stopping

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop_requested():
            self._take_results()
            self._take_changes()
            if self.reload_wanted:
                self.reload_wanted = False
                self._reload()
            now = self.clock()
            if self.replan_wanted or now >= self.next_replan:
                self._replan(rescan=self.replan_wanted)
            self._dispatch()
            self._maybe_write_pages()
            self.wake.wait(self._timeout())

    def _timeout(self) -> float:
        now = self.clock()
        wakeup = self.scheduler.next_wakeup()
        if wakeup is not None and wakeup <= self.dispatched_at:
            wakeup = None  # ready but no worker free: a finished render wakes the loop
        stale = self._next_stale()
        if stale is not None and stale <= now:
            stale = None  # already turned stale: pages_due (set by _maybe_write_pages) covers it
        times = [t for t in (wakeup, self.pages_due, stale, self.next_replan) if t is not None]
        timeout = max(0.0, min(times) - now) if times else 60.0
        if self.external_stop is not None:
            timeout = min(timeout, STOP_POLL)
        return min(timeout, 60.0)

    def _take_changes(self) -> None:
        for change in self.watcher.take():
            if change.is_dir:
                self.replan_wanted = True
                continue
            for name in self.matcher.charts(change.path):
                if name in self.scheduler:
                    self.scheduler.change(name, moved=change.moved)
                    early = self.early.pop(name, None)
                    if early is not None:
                        early.discard = True  # it read files that have changed since
                    if change.closed:
                        self.early_wanted.add(name)
                    else:
                        self.early_wanted.discard(name)

    def _replan(self, rescan: bool) -> None:
        """Move watches to folders that appeared or vanished; with rescan, render charts whose
        inputs changed while no watch could see them."""
        self.replan_wanted = False
        self.next_replan = self.clock() + REPLAN_EVERY
        folders = plan(self.board)
        if folders != self.watcher.folders():
            self.watcher.watch(folders)
            rescan = True
        if not rescan:
            return
        for chart in self.board.charts:
            timer = self.scheduler[chart.name]
            rec = self.records.get(chart.name)
            if timer.state == RENDERING or rec is None:
                continue
            current = fingerprint(self.board, chart, expand_inputs(chart))
            if current not in (rec.fingerprint, rec.failed_fingerprint):
                self.scheduler.change(chart.name)

    def _dispatch(self) -> None:
        if self.stopping:
            return
        self.dispatched_at = self.clock()
        # One render queued per worker beyond the one it runs: a worker that finishes starts
        # its next render at once instead of waiting for this loop to publish and dispatch.
        capacity = 2 * self.board.workers - len(self.inflight) - len(self.early_running)
        for name in self.scheduler.ready():
            if capacity <= 0:
                break
            if name in self.inflight:
                continue  # a removed chart of that name is still rendering
            chart = self.board.chart(name)
            timer = self.scheduler[name]
            inputs = expand_inputs(chart)
            current = fingerprint(self.board, chart, inputs)
            rec = self.records.get(name)
            self.early_tried.discard(name)  # its quiet window is over, whatever happens next
            if (timer.failures and timer.reason in ("change", "move") and rec is not None
                    and rec.failed_fingerprint == current):
                timer.skip(self.clock())  # nothing new for a failing chart: wait for its retry
                continue
            now = self.clock()
            if self._take_early(name, current, now):
                if name in self.inflight:
                    capacity -= 1
                continue
            trigger = timer.start(now)
            flight = Flight(chart, current, trigger, now, self.executor)
            self.inflight[name] = flight
            self._submit(name, flight, make_job(self.board, chart, inputs))
            capacity -= 1
            log.debug("started %s trigger=%s", name, trigger)
        self._start_early()

    def _start_early(self) -> None:
        """Render charts whose input a writer has just closed, while their quiet window runs.

        A closed file is usually a finished save, but a writer may open it again: so nothing is
        published before the window ends, as without this. If no event for the chart came in
        since the early render started (any event discards it), it read the files exactly as
        they are when the window ends, and its image is published then, or as soon as it is
        done, instead of starting a render only then. Only idle workers take early renders, one
        per chart and window; a polling watcher reports no closes, so never starts one.
        """
        wanted, self.early_wanted = self.early_wanted, set()
        idle = self.board.workers - len(self.inflight) - len(self.early_running)
        for name in sorted(wanted):
            if idle <= 0 or self.stopping:
                return
            if name not in self.scheduler or name in self.inflight or name in self.early or name in self.early_tried:
                continue
            timer = self.scheduler[name]
            if timer.state != QUEUED or timer.reason != "change" or timer.failures:
                continue
            chart = self.board.chart(name)
            inputs = expand_inputs(chart)
            now = self.clock()
            flight = Flight(chart, fingerprint(self.board, chart, inputs), "change", now, self.executor, early=True)
            self.early[name] = flight
            self.early_running.add(flight)
            self.early_tried.add(name)
            self._submit(name, flight, make_job(self.board, chart, inputs))
            idle -= 1
            log.debug("started %s early, inside its quiet window", name)

    def _take_early(self, name: str, current: str, now: float) -> bool:
        """Make the chart's early render its render, if it is still current (fingerprint
        `current`): the timer starts, and the result is published now or when it comes back."""
        early = self.early.pop(name, None)
        if early is None:
            return False
        if early.current != current or self.scheduler[name].state != QUEUED:
            early.discard = True
            return False
        early.early, early.trigger = False, self.scheduler[name].start(now)
        self.early_running.discard(early)
        log.debug("%s: inputs quiet since its early render started; that render is the one", name)
        if early.outcome is not None:
            self._publish(name, early, early.outcome)
        else:
            self.inflight[name] = early
        return True

    def _submit(self, name: str, flight: Flight, job) -> None:
        try:
            future = self.executor.submit(job)
        except Exception as exc:  # noqa: BLE001 - e.g. a remote cluster that went away
            future = Future()
            future.set_result(RenderFailure(name, f"{type(exc).__name__}: {exc}"))
        future.add_done_callback(lambda f, n=name, fl=flight: self._finished(n, fl, f))

    def _finished(self, name: str, flight: Flight, future: Future) -> None:
        self.results.put((name, flight, future))
        self.wake()

    def _take_results(self) -> None:
        while True:
            try:
                name, flight, future = self.results.get_nowait()
            except queue.Empty:
                break
            if flight.early:
                self.early_running.discard(flight)
                if not flight.discard and self.early.get(name) is flight:
                    flight.outcome = future.result()  # published if still current when the window ends
                else:
                    log.debug("%s: dropped an early render, its inputs changed while it ran", name)
                continue
            if self.inflight.get(name) is flight:
                del self.inflight[name]
            self._publish(name, flight, future.result())
        self._close_retired()

    def _publish(self, name: str, flight: Flight, outcome: RenderOutput | RenderFailure) -> None:
        now = self.clock()
        if flight.discard or name not in self.scheduler:
            log.info("discarded the render of %s: the chart was removed", name)
            return
        if isinstance(outcome, RenderFailure):
            if self.stopping and outcome.kind is FailureKind.WORKER_DIED:
                # Stopping with the whole process group (supervisord's stopasgroup): the render
                # was interrupted, not broken; the chart stays out of date for the next start.
                log.info("render of %s interrupted by the shutdown", name)
                return
            if not outcome.duration_ms:
                outcome = dataclasses.replace(outcome, duration_ms=(now - flight.started) * 1000)
        record = self.records.setdefault(name, ChartRecord())
        try:
            ok = publish_outcome(self.board, record, flight.current, outcome, flight.trigger, now)
        except PlotboardError as exc:
            log.error("cannot publish %s: %s", name, exc)
            ok = False
        chart = self.board.chart(name)
        scheduled = next_due(chart, record.rendered_at) if record.rendered_at is not None else None
        self.scheduler[name].finish(now, ok, record.consecutive_failures, scheduled)
        self._pages_dirty(now)

    # -- pages -------------------------------------------------------------------------------

    def _pages_dirty(self, now: float) -> None:
        if self.pages_due is None:
            self.pages_due = now + PAGES_DELAY

    def _next_stale(self) -> float | None:
        """When the next chart turns stale after the pages were last written."""
        times = []
        for chart in self.board.charts:
            rec = self.records.get(chart.name)
            if chart.stale_after is None or rec is None or rec.rendered_at is None or rec.error:
                continue
            at = rec.rendered_at + chart.stale_after + 0.01
            if at > self.pages_at:
                times.append(at)
        return min(times) if times else None

    def _maybe_write_pages(self) -> None:
        now = self.clock()
        stale = self._next_stale()
        if stale is not None and stale <= now:
            self._pages_dirty(now)
        # Batched: written once the renders have come to rest, or during a long burst at most
        # PAGES_DELAY after the first publish not on the pages yet.
        if self.pages_due is not None and (self.pages_due <= now or self._at_rest(now)):
            self._write_pages(now)

    def _at_rest(self, now: float) -> bool:
        """No render in flight and none about to start."""
        if self.inflight:
            return False
        wakeup = self.scheduler.next_wakeup()
        return wakeup is None or wakeup > now + PAGES_REST

    def _write_pages(self, now: float) -> None:
        self.pages_due = None
        self.pages_at = now
        try:
            save_state(self.board, self.records)
            write_pages(self.board, self.records, now)
        except (PlotboardError, OSError) as exc:
            log.error("cannot write the pages: %s", exc)
            self.pages_due = now + 1.0

    # -- charts and reload -------------------------------------------------------------------

    def _add_chart(self, chart: Chart, now: float, reason: str | None = None) -> None:
        timer = self.scheduler.add(chart.name)
        rec = self.records.get(chart.name)
        current = fingerprint(self.board, chart, expand_inputs(chart))
        why = out_of_date(chart, rec, current, now)
        if why:
            timer.request(now, reason or why)
        if rec is not None:
            timer.failures = rec.consecutive_failures if rec.error else 0
            if rec.rendered_at is not None:
                timer.scheduled_at = next_due(chart, rec.rendered_at)

    def _reload(self) -> None:
        try:
            new = load_board(self.config_path)
        except PlotboardError as exc:
            log.error("reload failed, keeping the board as it was:\n%s", exc)
            return
        old = self.board
        if new.output != old.output:
            log.warning("reload: a new output folder (%s) takes effect at the next start", new.output)
            new = dataclasses.replace(new, output=old.output)
        if any(getattr(new, k) != getattr(old, k) for k in POOL_KEYS):
            try:
                executor = self._make_executor(new)
            except PlotboardError as exc:
                log.error("reload failed, keeping the board as it was:\n%s", exc)
                return
            self.retired.append(self.executor)
            self.executor = executor
        now = self.clock()
        self.board = new
        self.matcher = Matcher(new)
        old_charts = {c.name: c for c in old.charts}
        added, changed = [], []
        removed = [name for name in old_charts if name not in {c.name for c in new.charts}]
        for flight in self.early.values():
            flight.discard = True  # the board changed: render again in the ordinary way
        self.early.clear()
        for name in removed:
            self.scheduler.remove(name)
            if name in self.inflight:
                self.inflight[name].discard = True
        try:
            forget_removed(new, self.records)
        except PlotboardError as exc:
            log.error("reload: %s", exc)
        for chart in new.charts:
            before = old_charts.get(chart.name)
            if before is None:
                added.append(chart.name)
                self._add_chart(chart, now, reason="reload")
            elif before != chart:
                changed.append(chart.name)
                self._update_chart(chart, now)
        self._replan(rescan=False)
        self._pages_dirty(now)
        self.pages_due = now
        log.info("reloaded %s: %d added, %d removed, %d changed%s", self.config_path, len(added), len(removed),
                 len(changed), "".join(f"\n  {sign}{n}" for sign, names in (("+", added), ("-", removed), ("~", changed))
                                       for n in names))

    def _update_chart(self, chart: Chart, now: float) -> None:
        timer = self.scheduler[chart.name]
        rec = self.records.get(chart.name)
        current = fingerprint(self.board, chart, expand_inputs(chart))
        if out_of_date(chart, rec, current, now):
            timer.request(now, "reload")
        if rec is not None and rec.rendered_at is not None:
            timer.scheduled_at = next_due(chart, rec.rendered_at)

    # -- stopping ----------------------------------------------------------------------------

    def _drain(self) -> None:
        """Let the renders in flight finish (each bounded by render_timeout) and publish them."""
        for name in list(self.early):  # a started render that is still current counts as in flight
            chart = self.board.chart(name)
            self._take_early(name, fingerprint(self.board, chart, expand_inputs(chart)), self.clock())
        if self.inflight:
            log.info("stopping: waiting for %d render(s) in flight", len(self.inflight))
        deadline = self.clock() + self.board.render_timeout + DRAIN_GRACE
        while self.inflight and not self.hard_stop and self.clock() < deadline:
            self._take_results()
            if self.inflight:
                self.wake.wait(min(STOP_POLL, max(0.0, deadline - self.clock())))
        self._take_results()
        if self.inflight:
            log.warning("stopping: abandoning %d render(s): %s", len(self.inflight), ", ".join(self.inflight))

    def _close_retired(self) -> None:
        busy = {id(f.executor) for f in [*self.inflight.values(), *self.early_running]}
        for executor in list(self.retired):
            if id(executor) not in busy:
                self.retired.remove(executor)
                executor.close(wait=True)

    def _shutdown(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        abandon = bool(self.inflight or self.early_running)  # early renders are never waited for
        for executor in [self.executor, *self.retired]:
            if executor is not None:
                try:
                    executor.close(wait=not abandon)
                except Exception as exc:  # noqa: BLE001 - shutting down must go on
                    log.error("stopping the render pool: %s", exc)
        self.inflight.clear()
        if self.executor is not None:
            self._write_pages(self.clock())
