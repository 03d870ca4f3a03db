"""The local pool's worker processes, as its dispatcher sees them: started from a forkserver
that has matplotlib loaded, each with its pipe, the jobs it holds and when its time is up.
The dispatcher itself is renderer.executors.pool."""

from __future__ import annotations

import select
from collections import deque
from concurrent.futures import Future
from typing import Any

from renderer.render.contain import kill_tree
from renderer.render.jobs import RenderJob

# Imported once in the forkserver, so a new worker starts with all of it loaded: matplotlib
# (renderer.render.draw), what unpickling a worker needs (renderer.render.worker, renderer.executors.pool,
# renderer.render.contain) and renderer.executors.forkserver, which makes the forkserver's exit quick.
PRELOAD = ["renderer.render.draw", "renderer.render.worker", "renderer.executors.base", "renderer.executors.pool",
           "renderer.render.contain", "renderer.executors.forkserver"]


def context():
    """multiprocessing's forkserver context, with PRELOAD loaded in the forkserver."""
    import multiprocessing  # not at module level: a build with nothing to do never needs it

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class Worker:
    """One worker process, the render it runs (if any) and when that render's time is up."""

    def __init__(self, proc: Any, conn: Any) -> None:
        self.proc, self.conn = proc, conn
        self.tasks: deque[tuple[RenderJob, Future]] = deque()  # sent to it, in order: the first is rendering
        self.deadline = float("inf")  # of the render in flight; of leaving, once it is leaving

    @property
    def task(self) -> tuple[RenderJob, Future] | None:
        """The job it renders now (if any)."""
        return self.tasks[0] if self.tasks else None

    def kill(self) -> None:
        """SIGKILL it and everything it started; also if it has just started and does not lead
        its own process group yet (killing the group alone would miss it)."""
        kill_tree(self.proc.pid)
        self.proc.kill()


class Poller:
    """multiprocessing.connection.wait's answer from one poll object kept while the watched
    file descriptors stay the same (wait builds a selector on every call: a sizable part of the
    dispatcher's CPU per render). poll is told the fds at each call, so a reused fd is fine."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._by_fd: dict[int, Any] = {}

    def wait(self, objects: list[Any], timeout: float) -> list[Any]:
        by_fd = {o if isinstance(o, int) else o.fileno(): o for o in objects}
        if by_fd.keys() != self._by_fd.keys():
            self._poll = select.poll()
            for fd in by_fd:
                self._poll.register(fd, select.POLLIN)
        self._by_fd = by_fd
        return [by_fd[fd] for fd, _ in self._poll.poll(timeout * 1000)]


def readable(conn: Any) -> bool:
    """Whether a message (or the end) is there to read, without waiting."""
    try:
        return bool(select.select([conn], [], [], 0)[0])
    except (OSError, ValueError):  # closed
        return False
