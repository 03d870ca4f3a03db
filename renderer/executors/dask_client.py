"""Renders on a Dask cluster (`[board] executor = "dask"`), for boards that outgrow one host.

This is the client, in the daemon (or build): it packs each job into a parcel and submits
`run_remote` with it; what runs on the workers' hosts is in renderer.executors.dask_remote. Image bytes
come back to the daemon, which publishes as before, so it stays the only writer of the output
folder.

A Dask worker lost mid-render fails that render; a lost scheduler fails the renders in flight,
and the executor reconnects when the scheduler returns. `distributed` is imported only here.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
import time
import uuid
from concurrent.futures import Future, InvalidStateError
from types import TracebackType
from typing import Self

from renderer.executors.dask_remote import pack, run_remote
from renderer.errors import PlotboardError
from renderer.executors.base import worker_died
from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput, describe
from renderer.text import one_line
from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")

EXTRA = "pip install 'plotboard[dask]'"
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler, and to get it back after losing it
RETRY_EVERY = 5.0  # seconds between attempts to reach a scheduler that is down
RETRY_TIMEOUT = 3.0  # seconds each of those attempts may take
NO_WORKERS_GRACE = 30.0  # renders waiting this long on a scheduler without workers fail


class MissingExtra(PlotboardError):
    """The board asks for Dask, but `distributed` is not installed."""

    exit_code = 2


def require_distributed():
    """Import `distributed`, or raise MissingExtra naming the extra that provides it."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingExtra(
            f'executor = "dask" needs the distributed package, which cannot be imported ({exc}); '
            f"install it with: {EXTRA}"
        ) from None
    return distributed


class DaskExecutor:
    """Renders on a Dask scheduler; every submitted job's future resolves, never raises.

    If the watcher thread dies (a bug), `on_thread_death` is told its name, and every render in
    flight or submitted later fails as WorkerDied: no lost worker or scheduler would be noticed."""

    def __init__(self, scheduler_address: str, render_timeout: float,
                 connect_timeout: float = CONNECT_TIMEOUT, on_thread_death: Died | None = None) -> None:
        self._distributed = require_distributed()
        self.address = scheduler_address
        self.timeout = render_timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Future, RenderJob, object]] = {}
        self._client = None
        self._problem = f"not connected to the Dask scheduler at {scheduler_address}"
        self._retry_at = 0.0
        self._no_workers_since: float | None = None
        self._checked_workers = 0.0
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._broken: str | None = None  # why the watcher died: every render fails with it
        self._connect(self.connect_timeout)
        self._monitor = guarded_thread("plotboard-dask", self._watch, on_thread_death, self._died)
        self._monitor.start()

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]":
        outer: Future = Future()
        try:
            parcel = pickle.dumps(pack(job), protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:
            _settle(outer, RenderFailure(job.name, describe(exc)))  # an input went: as if the plot read it
            return outer
        with self._lock:
            client = self._client if self._client is not None and self._client.status == "running" else None
            problem, broken = self._problem, self._broken
        if broken is not None:
            _settle(outer, worker_died(job.name, broken))
            return outer
        if client is None:
            _settle(outer, _unavailable(job, f"SchedulerUnavailable: {problem}"))
            return outer
        key = f"plotboard-{job.name}-{uuid.uuid4().hex[:12]}"
        try:
            future = client.submit(run_remote, parcel, job.name, self.timeout, key=key, pure=False)
        except Exception as exc:  # noqa: BLE001 - the client closed under us
            _settle(outer, _unavailable(job, f"SchedulerUnavailable: {describe(exc)}"))
            return outer
        with self._lock:
            self._pending[key] = (outer, job, future)
        future.add_done_callback(self._done)
        return outer

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with wait, let renders in flight finish (each bounded by its timeout).

        Closing again does nothing."""
        if wait:
            while True:
                with self._lock:
                    outers = [entry[0] for entry in self._pending.values()]
                if not outers:
                    break
                for outer in outers:
                    outer.exception()  # waits; never raises, outcomes are results
        else:
            with self._lock:
                keys = list(self._pending)
            for key in keys:
                self._fail(key, FailureKind.CANCELLED, "Cancelled: plotboard stopped before this render finished",
                           cancel=True)
        self._stop.set()
        self._monitor.join()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            _quiet_close(client)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # Runs in distributed's callback thread.
    def _done(self, future) -> None:
        with self._lock:
            entry = self._pending.pop(future.key, None)
        if entry is None:
            return  # already failed (its worker was lost) or cancelled by close
        outer, job, _ = entry
        if future.status == "finished":
            try:
                outcome = pickle.loads(future.result())
            except Exception as exc:  # noqa: BLE001 - the result was lost with its worker
                outcome = worker_died(job.name, f"the render's result was lost ({describe(exc)})")
        elif future.status == "error":
            outcome = self._error(job, future.exception())
        else:
            outcome = _unavailable(job, f"SchedulerLost: lost the connection to the Dask scheduler at {self.address}")
        _settle(outer, outcome)

    def _error(self, job: RenderJob, exc: BaseException) -> RenderFailure:
        if isinstance(exc, self._distributed.KilledWorker):
            return worker_died(job.name, f"Dask workers died running this render ({exc})")
        # run_remote turns the render's own errors into outcomes: this one is the cluster's.
        text = describe(exc)
        if (isinstance(exc, ImportError) and "renderer" in str(exc)) or "deserializ" in str(exc):
            # Dask unpickles tasks on the scheduler and the workers: both need plotboard.
            text += f" (the Dask scheduler and workers need plotboard installed: {EXTRA})"
        return _unavailable(job, text)

    # Runs on the client's event loop: hand over, never block there.
    def _event(self, event: tuple) -> None:
        self._events.put(event[1])

    def _connect(self, timeout: float) -> None:
        try:
            client = self._distributed.Client(self.address, timeout=timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, a bad address
            problem = f"cannot reach the Dask scheduler at {self.address} ({describe(exc)})"
            with self._lock:
                repeated, self._problem = problem == self._problem, problem
                self._retry_at = time.monotonic() + RETRY_EVERY
            if not repeated:
                log.warning("%s; retrying every %gs", one_line(problem), RETRY_EVERY)
            return
        client.subscribe_topic("all", self._event)
        with self._lock:
            old, self._client = self._client, client
            self._problem = f"lost the connection to the Dask scheduler at {self.address}; reconnecting"
        if old is not None:
            _quiet_close(old)
            log.info("reconnected to the Dask scheduler at %s", self.address)

    def _watch(self) -> None:
        """Fail renders on lost workers, reconnect to a scheduler that went away, notice no workers."""
        while not self._stop.is_set():
            try:
                msg = self._events.get(timeout=0.25)
            except queue.Empty:
                msg = None
            if isinstance(msg, dict) and msg.get("action") == "remove-worker" and not msg.get("expected"):
                for key in msg.get("processing-tasks", ()):
                    self._fail(key, FailureKind.WORKER_DIED,
                               f"WorkerDied: the Dask worker {msg.get('worker', '')} running this render was lost",
                               cancel=True)
            with self._lock:
                client = self._client
            if client is None or client.status in ("closing", "closed"):
                if time.monotonic() >= self._retry_at and not self._stop.is_set():
                    self._connect(min(self.connect_timeout, RETRY_TIMEOUT))
            elif client.status == "running":
                self._check_workers(client)

    def _died(self, exc: BaseException) -> None:
        """The watcher died (logged already): fail what is in flight, and renders from now on."""
        why = f"the Dask client's watcher thread died ({describe(exc)})"
        with self._lock:
            self._broken = why
            keys = list(self._pending)
        for key in keys:
            self._fail(key, FailureKind.WORKER_DIED, f"WorkerDied: {why}", cancel=True)

    def _check_workers(self, client) -> None:
        now = time.monotonic()
        with self._lock:
            waiting = bool(self._pending)
        if not waiting:
            self._no_workers_since = None
            return
        if now - self._checked_workers < 1.0:
            return
        self._checked_workers = now
        try:
            workers = client.scheduler_info(n_workers=0).get("n_workers", 1)
        except Exception:  # noqa: BLE001 - the connection is going; the client reports that itself
            return
        if workers:
            self._no_workers_since = None
        elif self._no_workers_since is None:
            self._no_workers_since = now
        elif now - self._no_workers_since > NO_WORKERS_GRACE:
            with self._lock:
                keys = list(self._pending)
            for key in keys:
                self._fail(key, FailureKind.UNAVAILABLE,
                           f"NoWorkers: the Dask scheduler at {self.address} has had no workers "
                           f"for {NO_WORKERS_GRACE:g}s",
                           cancel=True)

    def _fail(self, key: str, kind: FailureKind, error: str, cancel: bool) -> None:
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None:
            return
        outer, job, future = entry
        _settle(outer, RenderFailure(job.name, error, kind=kind))
        if cancel:
            try:
                future.cancel()
            except Exception:  # noqa: BLE001 - the client may be gone already
                pass


def _unavailable(job: RenderJob, error: str) -> RenderFailure:
    return RenderFailure(job.name, error, kind=FailureKind.UNAVAILABLE)


def _settle(outer: Future, outcome: RenderOutput | RenderFailure) -> None:
    try:
        outer.set_result(outcome)
    except InvalidStateError:
        pass


def _quiet_close(client) -> None:
    try:
        client.close(timeout=5)
    except Exception:  # noqa: BLE001 - closing a client whose scheduler is gone
        pass
