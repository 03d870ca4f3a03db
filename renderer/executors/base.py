"""What renders jobs: the executor interface, and the failures that every executor reports in
the same words (the factory that picks one for a board is renderer.executors.factory).

Light on purpose (no process pool, no distributed): local workers and remote render processes import
it for `RECYCLE_AFTER` and the failure constructors.
"""

from __future__ import annotations

import signal
from concurrent.futures import Future
from types import TracebackType
from typing import Protocol, Self

from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput

RECYCLE_AFTER = 100  # renders per worker process: memory stays flat, and replacing one costs ~0.7 s


class Executor(Protocol):
    """What the build and the daemon need from something that renders jobs.

    Every submitted job's future resolves with a RenderOutput or a RenderFailure, never an
    exception. As a context manager, leaving the block closes it, waiting for renders in flight.
    """

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]": ...

    def close(self, wait: bool = True) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


def timed_out(name: str, timeout: float) -> RenderFailure:
    """A render killed at its deadline."""
    return RenderFailure(name, f"RenderTimeout: render took longer than {timeout:g}s and was killed",
                         kind=FailureKind.TIMEOUT)


def worker_died(name: str, what: str) -> RenderFailure:
    """A render lost with whatever ran it; `what` says which and how ("the render process ...")."""
    return RenderFailure(name, f"WorkerDied: {what}", kind=FailureKind.WORKER_DIED)


def process_died(name: str, exitcode: int | None) -> RenderFailure:
    """A render whose process ended under it, with the signal or status it ended with.

    SIGKILL that plotboard did not send is most often the kernel's OOM killer; the message says
    so, as gunicorn's arbiter does."""
    return worker_died(name, f"the render process {_death(exitcode)}")


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            pass
        else:
            return f"was killed by {name}" + (" (perhaps out of memory?)" if name == "SIGKILL" else "")
    return f"exited with status {exitcode}"
