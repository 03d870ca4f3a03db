"""Renders on a Dask cluster (`[board] executor = "dask"`), for boards that outgrow one host.

The daemon side packs each job into a parcel: the job, the plot module's source and the input
files' bytes (up to SHIP_LIMIT per render), so workers need no shared filesystem. A Dask task
hands the parcel to a warm render process that the Dask worker keeps beside itself; that
process unpacks the files into a private folder and runs the same `run_job` as local workers.
Rendering outside the Dask worker process gives the guarantees of the local pool: a render
running past `render_timeout` is killed, and a render that crashes its process (segfault,
SIGKILL, out of memory) fails alone while the Dask worker keeps serving. Image bytes come back
to the daemon, which publishes as before, so it stays the only writer of the output folder.

A Dask worker lost mid-render fails that render; a lost scheduler fails the renders in flight,
and the executor reconnects when the scheduler returns. `distributed` is imported only here.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import pickle
import queue
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, replace
from pathlib import Path

from renderer.errors import PlotboardError
from renderer.jobs import RenderFailure, RenderJob, RenderOutput, describe

log = logging.getLogger("plotboard")

EXTRA = "pip install 'plotboard[dask]'"
SHIP_LIMIT = 8 * 2**20  # input bytes shipped with one render; larger inputs are read in place
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler, and to get it back after losing it
RETRY_EVERY = 5.0  # seconds between attempts to reach a scheduler that is down
RETRY_TIMEOUT = 3.0  # seconds each of those attempts may take
NO_WORKERS_GRACE = 30.0  # renders waiting this long on a scheduler without workers fail
CHILD_START_TIMEOUT = 120.0  # a render process's imports (matplotlib) on a slow, cold worker
RECYCLE_AFTER = 100  # renders per render process, as with the local pool
_FRAME = struct.Struct("!Q")


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


# --- the parcel: what travels from the daemon to a worker ------------------------------------


@dataclass(frozen=True)
class Parcel:
    """A job with the bytes it reads, so a worker on another machine can render it."""

    job: RenderJob
    files: dict[str, tuple[bytes, int]]  # input path -> (bytes, mtime_ns)
    in_place: dict[str, tuple[int, int]]  # input path -> (size, mtime_ns): too big, read in place
    module: bytes | None  # the plot module's source when it lives next to the board file


def pack(job: RenderJob, limit: int = SHIP_LIMIT) -> Parcel:
    """Read the plot module and the inputs; inputs beyond `limit` bytes in all are left in place."""
    module = Path(job.plot_file).read_bytes() if job.plot_file else None
    files: dict[str, tuple[bytes, int]] = {}
    in_place: dict[str, tuple[int, int]] = {}
    budget = limit
    for path in job.inputs:
        st = os.stat(path)
        if st.st_size <= budget:
            data = Path(path).read_bytes()
            files[path] = (data, st.st_mtime_ns)
            budget -= len(data)
        else:
            in_place[path] = (st.st_size, st.st_mtime_ns)
    return Parcel(job, files, in_place, module)


def unpack(parcel: Parcel, workdir: Path) -> RenderJob:
    """Write a parcel's files under `workdir` and return the job pointing at them.

    Inputs keep their absolute path below `workdir/inputs` (names, folders and mtimes as on
    the daemon's side); the module goes to a folder named by its hash, so an unchanged module
    is not re-executed.
    """
    job = parcel.job
    inputs_dir = workdir / "inputs"
    shutil.rmtree(inputs_dir, ignore_errors=True)
    inputs = []
    for path in job.inputs:
        if path in parcel.files:
            data, mtime_ns = parcel.files[path]
            dest = inputs_dir / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            os.utime(dest, ns=(mtime_ns, mtime_ns))
            inputs.append(str(dest))
        else:
            size, _ = parcel.in_place[path]
            try:
                found = os.stat(path).st_size
            except OSError:
                found = None
            if found != size:
                raise InputNotShipped(
                    f"{path} ({size / 2**20:.1f} MiB) is over the {SHIP_LIMIT // 2**20} MiB shipped to "
                    f"Dask workers with a render, and this worker cannot read it in place"
                    f"{'' if found is None else f' (it has {found} bytes there)'}; put the board's "
                    f"files on a filesystem every worker mounts at the same path"
                )
            inputs.append(path)
    plot_file = job.plot_file
    if parcel.module is not None and plot_file is not None:
        digest = hashlib.sha256(parcel.module).hexdigest()[:16]
        dest = workdir / "modules" / digest / Path(plot_file).name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_bytes(parcel.module)
            os.replace(tmp, dest)
        plot_file = str(dest)
    return replace(job, inputs=tuple(inputs), plot_file=plot_file)


class InputNotShipped(FileNotFoundError):
    """An input too big to ship that the worker cannot read at the daemon's path either."""


# --- the worker side: a Dask task hands the parcel to a warm render process -----------------


def run_remote(parcel: bytes, name: str, timeout: float) -> bytes:
    """The Dask task: render a pickled Parcel in a render process; returns the pickled outcome."""
    child = _take_child()
    keep = False
    try:
        outcome, keep = child.run(parcel, name, timeout)
        return outcome
    finally:
        _give_back(child, keep)


_idle: list["_RenderProcess"] = []
_idle_lock = threading.Lock()
_atexit_registered = False


def _take_child() -> "_RenderProcess":
    global _atexit_registered
    with _idle_lock:
        if not _atexit_registered:
            atexit.register(_close_idle)
            _atexit_registered = True
        if _idle:
            return _idle.pop()
    return _RenderProcess()


def _give_back(child: "_RenderProcess", keep: bool) -> None:
    if keep and child.renders < RECYCLE_AFTER:
        with _idle_lock:
            _idle.append(child)
    else:
        child.close()


def _close_idle() -> None:
    with _idle_lock:
        children, _idle[:] = list(_idle), []
    for child in children:
        child.close()


def _package_parent() -> str:
    return str(Path(__file__).resolve().parent.parent)


class _RenderProcess:
    """One render process beside a Dask worker, talking length-prefixed pickles over pipes.

    A subprocess rather than multiprocessing: Dask workers are daemonic processes, which
    multiprocessing forbids to have children.
    """

    def __init__(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="plotboard-render-")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_parent(), env.get("PYTHONPATH")) if p)
        env.setdefault("MPLBACKEND", "Agg")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from renderer.dask_executor import child_main; child_main()", self.workdir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self.ready = False
        self.renders = 0

    def run(self, parcel: bytes, name: str, timeout: float) -> tuple[bytes, bool]:
        """Render one parcel; returns (pickled outcome, whether this process can be reused)."""
        try:
            if not self.ready:
                if self._read(1, time.monotonic() + CHILD_START_TIMEOUT) != b"R":
                    return self._died(name, "failed to start"), False
                self.ready = True
            self.proc.stdin.write(_FRAME.pack(len(parcel)) + parcel)
            self.proc.stdin.flush()
            deadline = time.monotonic() + timeout
            head = self._read(_FRAME.size, deadline)
            if head is None:
                self.proc.kill()
                self.close()
                return pickle.dumps(RenderFailure(
                    name, f"RenderTimeout: render took longer than {timeout:g}s and was killed")), False
            if len(head) < _FRAME.size:
                return self._died(name), False
            (size,) = _FRAME.unpack(head)
            body = self._read(size, None)
            if body is None or len(body) < size:
                return self._died(name), False
            self.renders += 1
            return body, True
        except (BrokenPipeError, ConnectionResetError):
            return self._died(name), False

    def _read(self, n: int, deadline: float | None) -> bytes | None:
        """Up to n bytes (fewer at end of file), or None at the deadline."""
        fd = self.proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    return None
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _died(self, name: str, what: str = "") -> bytes:
        from renderer.pool import _death

        self.close()
        how = what or _death(self.proc.returncode)
        return pickle.dumps(RenderFailure(name, f"WorkerDied: the render process {how}"))

    def close(self) -> None:
        """Stop the process (killed if it has not exited 2 s after its input closed); remove its folder."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def child_main() -> None:
    """The render process: read parcels from stdin, write outcomes to stdout, until EOF."""
    workdir = Path(sys.argv[1])
    # Keep the protocol's pipes to ourselves: a plot function printing must not corrupt them.
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent, workdir), daemon=True).start()

    from renderer import render  # noqa: F401 - warm: matplotlib imported before the first job
    from renderer.worker import run_job

    out.write(b"R")
    out.flush()
    try:
        while True:
            head = inp.read(_FRAME.size)
            if len(head) < _FRAME.size:
                return  # the Dask worker closed us or is gone
            (size,) = _FRAME.unpack(head)
            data = inp.read(size)
            if len(data) < size:
                return
            parcel: Parcel = pickle.loads(data)
            try:
                job = unpack(parcel, workdir)
            except Exception as exc:  # noqa: BLE001 - e.g. no space left; the render fails, not the process
                outcome: RenderOutput | RenderFailure = RenderFailure(parcel.job.name, describe(exc))
            else:
                outcome = run_job(job)
            body = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
            out.write(_FRAME.pack(len(body)) + body)
            out.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _exit_with_parent(parent: int, workdir: Path) -> None:
    """A render stuck in a plot function must not outlive the Dask worker that started it."""
    while os.getppid() == parent:
        time.sleep(1.0)
    shutil.rmtree(workdir, ignore_errors=True)
    os._exit(1)


# --- the daemon side --------------------------------------------------------------------------


class DaskExecutor:
    """Renders on a Dask scheduler; every submitted job's future resolves, never raises."""

    def __init__(self, scheduler_address: str, render_timeout: float,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
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
        self._connect(self.connect_timeout)
        self._monitor = threading.Thread(target=self._watch, name="plotboard-dask", daemon=True)
        self._monitor.start()

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]":
        outer: Future = Future()
        try:
            parcel = pickle.dumps(pack(job), protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:
            _settle(outer, RenderFailure(job.name, describe(exc)))
            return outer
        with self._lock:
            client = self._client if self._client is not None and self._client.status == "running" else None
            problem = self._problem
        if client is None:
            _settle(outer, RenderFailure(job.name, f"SchedulerUnavailable: {problem}"))
            return outer
        key = f"plotboard-{job.name}-{uuid.uuid4().hex[:12]}"
        try:
            future = client.submit(run_remote, parcel, job.name, self.timeout, key=key, pure=False)
        except Exception as exc:  # noqa: BLE001 - the client closed under us
            _settle(outer, RenderFailure(job.name, f"SchedulerUnavailable: {describe(exc)}"))
            return outer
        with self._lock:
            self._pending[key] = (outer, job, future)
        future.add_done_callback(self._done)
        return outer

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with wait, let renders in flight finish (each bounded by its timeout)."""
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
                self._fail(key, "Cancelled: plotboard stopped before this render finished", cancel=True)
        self._stop.set()
        self._monitor.join()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            _quiet_close(client)

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
                outcome = RenderFailure(job.name, f"WorkerDied: the render's result was lost ({describe(exc)})")
        elif future.status == "error":
            outcome = RenderFailure(job.name, self._error_text(future.exception()))
        else:
            outcome = RenderFailure(job.name, f"SchedulerLost: lost the connection to the Dask scheduler at {self.address}")
        _settle(outer, outcome)

    def _error_text(self, exc: BaseException) -> str:
        if isinstance(exc, self._distributed.KilledWorker):
            return f"WorkerDied: Dask workers died running this render ({exc})"
        text = describe(exc)
        if (isinstance(exc, ImportError) and "renderer" in str(exc)) or "deserializ" in str(exc):
            # Dask unpickles tasks on the scheduler and the workers: both need plotboard.
            text += f" (the Dask scheduler and workers need plotboard installed: {EXTRA})"
        return text

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
                log.warning("%s; retrying every %gs", problem, RETRY_EVERY)
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
                    self._fail(key, f"WorkerDied: the Dask worker {msg.get('worker', '')} running this render was lost",
                               cancel=True)
            with self._lock:
                client = self._client
            if client is None or client.status in ("closing", "closed"):
                if time.monotonic() >= self._retry_at and not self._stop.is_set():
                    self._connect(min(self.connect_timeout, RETRY_TIMEOUT))
            elif client.status == "running":
                self._check_workers(client)

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
                self._fail(key, f"NoWorkers: the Dask scheduler at {self.address} has had no workers "
                                f"for {NO_WORKERS_GRACE:g}s", cancel=True)

    def _fail(self, key: str, error: str, cancel: bool) -> None:
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None:
            return
        outer, job, future = entry
        _settle(outer, RenderFailure(job.name, error))
        if cancel:
            try:
                future.cancel()
            except Exception:  # noqa: BLE001 - the client may be gone already
                pass


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
