"""The render pool: warm worker processes with a per-render timeout and crash isolation.

pebble's ProcessPool kills a render that runs past its timeout and replaces a worker that
dies (segfault, os._exit, out of memory) while the pool stays usable. Workers are forked
from a forkserver that has matplotlib imported already, so a new worker starts warm, and
they are recycled after `max_tasks` renders so memory stays flat.
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import Future, TimeoutError
from typing import Protocol

from renderer.jobs import RenderFailure, RenderJob, RenderOutput

RECYCLE_AFTER = 100
PRELOAD = ["renderer.render"]


class Executor(Protocol):
    """What the build and the daemon need from something that renders jobs."""

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]": ...

    def close(self, wait: bool = True) -> None: ...


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class RenderPool:
    """Local worker processes; every submitted job's future resolves, never raises."""

    def __init__(self, workers: int, timeout: float, max_tasks: int = RECYCLE_AFTER) -> None:
        from pebble import ProcessPool

        self.timeout = timeout
        self._pool = ProcessPool(max_workers=workers, max_tasks=max_tasks, context=_context())

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]":
        from renderer.worker import run_job

        outer: Future = Future()
        inner = self._pool.schedule(run_job, args=(job,), timeout=self.timeout)
        inner.add_done_callback(lambda f: outer.set_result(_outcome(job, f, self.timeout)))
        return outer

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with wait, let renders in flight finish (each bounded by its timeout)."""
        if wait:
            self._pool.close()
        else:
            self._pool.stop()
        self._pool.join()


def _outcome(job: RenderJob, future: Future, timeout: float) -> RenderOutput | RenderFailure:
    from pebble import ProcessExpired

    try:
        return future.result()
    except TimeoutError:
        return RenderFailure(job.name, f"RenderTimeout: render took longer than {timeout:g}s and was killed")
    except ProcessExpired as exc:
        return RenderFailure(job.name, f"WorkerDied: the render process {_death(exc.exitcode)}")
    except BaseException as exc:  # noqa: BLE001 - e.g. a result that cannot be unpickled
        return RenderFailure(job.name, f"{type(exc).__name__}: {exc}")


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            pass
    return f"exited with status {exitcode}"


def make_executor(board, workers: int | None = None) -> Executor:
    """The executor the board asks for: local worker processes, or a Dask cluster."""
    if board.executor == "dask":
        from renderer.dask_executor import DaskExecutor

        return DaskExecutor(board.scheduler, board.render_timeout)
    return RenderPool(workers or board.workers, board.render_timeout)
