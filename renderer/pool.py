"""The render pool: warm worker processes with a per-render timeout and crash isolation.

pebble's ProcessPool kills a render that runs past its timeout and replaces a worker that
dies (segfault, os._exit, out of memory) while the pool stays usable. Workers are forked
from a forkserver that has matplotlib imported already, so a new worker starts warm, and
they are recycled after `max_tasks` renders so memory stays flat.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from concurrent.futures import Future, TimeoutError
from types import TracebackType
from typing import Self

from renderer.executors import RECYCLE_AFTER, process_died, timed_out
from renderer.jobs import RenderFailure, RenderJob, RenderOutput

# Imported once in the forkserver, so a new worker starts with all of it loaded: matplotlib
# (renderer.render), what unpickling a task needs (pebble's worker loop, renderer.worker,
# renderer.pool's initializer and renderer.executors, which it imports), and
# renderer.forkserver, which makes the forkserver's exit quick.
PRELOAD = ["renderer.render", "renderer.worker", "renderer.executors", "renderer.pool", "pebble.pool.process",
           "renderer.forkserver"]


def _context():
    import multiprocessing  # not at module level: a build with nothing to do never needs it

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class RenderPool:
    """Local worker processes; every submitted job's future resolves, never raises."""

    def __init__(self, workers: int, timeout: float, max_tasks: int = RECYCLE_AFTER) -> None:
        from pebble import ProcessPool

        self.timeout = timeout
        self._closed = False
        self._pool = ProcessPool(max_workers=workers, max_tasks=max_tasks, context=_context(),
                                 initializer=die_with_owner, initargs=(os.getpid(),))

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]":
        from renderer.worker import run_job

        outer: Future = Future()
        inner = self._pool.schedule(run_job, args=(job,), timeout=self.timeout)
        inner.add_done_callback(lambda f: outer.set_result(_outcome(job, f, self.timeout)))
        return outer

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with wait, let renders in flight finish (each bounded by its timeout).

        Closing again does nothing; a close that was interrupted can be repeated."""
        if self._closed:
            return
        if wait:
            self._pool.close()
        else:
            self._pool.stop()
        self._pool.join()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def die_with_owner(owner: int) -> None:
    """Worker initializer: kill this worker as soon as the process that owns the pool is gone.

    Workers are children of the forkserver, not of their owner, and the forkserver lives on
    while any worker does, so neither a parent-death signal nor the pool's pipes end a busy
    worker whose owner was killed with SIGKILL: the worker watches its owner itself.
    """

    def watch() -> None:
        try:
            fd = os.pidfd_open(owner)  # readable once the owner has exited
            select.select([fd], [], [])
        except OSError:
            while _alive(owner):
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="plotboard-owner-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _outcome(job: RenderJob, future: Future, timeout: float) -> RenderOutput | RenderFailure:
    from pebble import ProcessExpired

    try:
        return future.result()
    except TimeoutError:
        return timed_out(job.name, timeout)
    except ProcessExpired as exc:
        return process_died(job.name, exc.exitcode)
    except BaseException as exc:  # noqa: BLE001 - e.g. a result that cannot be unpickled
        return RenderFailure(job.name, f"{type(exc).__name__}: {exc}")
