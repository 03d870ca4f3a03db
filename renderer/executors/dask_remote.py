"""The part of the Dask executor that runs on the workers' hosts, apart from the client.

A parcel carries a job with the bytes it reads: the plot module's source and the input files
(up to SHIP_LIMIT per render), so workers need no shared filesystem. The Dask task, `run_remote`,
hands the parcel to a warm render process kept beside the Dask worker; that process unpacks the
files into a private folder and runs the same `run_job` as local workers. Rendering outside the
Dask worker process gives the guarantees of the local pool: a render running past its timeout is
killed, and one that crashes its process fails alone while the Dask worker keeps serving.

Workers and the scheduler import this module to unpickle tasks: it needs neither `distributed`
nor matplotlib (the render process imports matplotlib itself).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from renderer.render.contain import kill_descendants, kill_tree, lead_own_group
from renderer.executors.base import RECYCLE_AFTER, process_died, timed_out, worker_died
from renderer.render.jobs import RenderFailure, RenderJob, RenderOutput, describe

SHIP_LIMIT = 8 * 2**20  # input bytes shipped with one render; larger inputs are read in place
CHILD_START_TIMEOUT = 120.0  # a render process's imports (matplotlib) on a slow, cold worker
_FRAME = struct.Struct("!Q")


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
    plot_file, root = job.plot_file, job.root
    if parcel.module is not None and plot_file is not None:
        # The module keeps its place below a folder named by its hash, which becomes the board
        # folder the worker imports from (renderer.render.modules); the daemon's folder stays on
        # sys.path after it, so helpers still import where a shared filesystem has them.
        digest = hashlib.sha256(parcel.module).hexdigest()[:16]
        try:
            relative = Path(plot_file).relative_to(job.root)
        except ValueError:
            relative = Path(Path(plot_file).name)
        root = str(workdir / "modules" / digest)
        dest = Path(root) / relative
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_bytes(parcel.module)
            os.replace(tmp, dest)
        plot_file = str(dest)
        if job.root not in sys.path:
            sys.path.append(job.root)
    return replace(job, inputs=tuple(inputs), plot_file=plot_file, root=root)


def _as_on_daemon(outcome: RenderOutput | RenderFailure, here: str, there: str):
    """The outcome with the board modules it used named by their paths on the daemon's side."""
    if not outcome.modules or here == there:
        return outcome
    prefix = here.rstrip(os.sep) + os.sep
    modules = {(os.path.join(there, path[len(prefix):]) if path.startswith(prefix) else path): digest
               for path, digest in outcome.modules.items()}
    return replace(outcome, modules=modules)


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
    return str(Path(__file__).resolve().parents[2])  # the folder that holds renderer/


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
            [sys.executable, "-c", "from renderer.executors.dask_remote import child_main; child_main()", self.workdir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            process_group=0,  # a group of its own, killed whole at a timeout (renderer.render.contain)
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
                kill_tree(self.proc.pid)
                self.close()
                return pickle.dumps(timed_out(name, timeout)), False
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
        self.close()
        if what:
            return pickle.dumps(worker_died(name, f"the render process {what}"))
        return pickle.dumps(process_died(name, self.proc.returncode))

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
    lead_own_group()
    threading.Thread(target=_exit_with_parent, args=(parent, workdir), daemon=True).start()

    from renderer.render import draw as render  # noqa: F401 - warm: matplotlib imported before the first job
    from renderer.render.worker import run_job

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
                outcome = _as_on_daemon(run_job(job), job.root, parcel.job.root)
            kill_descendants()  # nothing a render started outlives it
            body = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
            out.write(_FRAME.pack(len(body)) + body)
            out.flush()
    finally:
        kill_descendants()
        shutil.rmtree(workdir, ignore_errors=True)
        sys.stderr.flush()
        os._exit(0)  # at once, whatever threads a plot left running


def _exit_with_parent(parent: int, workdir: Path) -> None:
    """A render stuck in a plot function must not outlive the Dask worker that started it."""
    while os.getppid() == parent:
        time.sleep(1.0)
    shutil.rmtree(workdir, ignore_errors=True)
    if os.getpgid(0) == os.getpid():
        kill_tree(os.getpid())  # with what a render started, this process too
    os._exit(1)
