"""The render pool: warm worker processes with a per-render timeout and crash isolation.

One dispatcher thread talks to each worker over a pipe of its own and watches every worker's
exit at the same time, so:

- a render running past its timeout is killed with everything it started (the worker's
  process group and every process below it, renderer.render.contain), and fails as RenderTimeout;
- a worker that dies in a render (a crash, `os._exit(0)`, the OOM killer) fails that render at
  once, with its exit status or signal;
- a worker leaves after `max_tasks` renders (or a MemoryError) with os._exit, whatever threads a
  plot left running, and is replaced at once, so memory stays flat and rendering goes on;
- during a backlog of short renders each worker holds up to PIPELINE jobs (the one it renders,
  the next ones waiting in its pipe), so it starts its next render without waiting for this
  thread, and this thread wakes once for several results instead of once per result (a wake-up
  costs this thread a few tenths of a millisecond, mostly in cold caches, whatever it does). The
  jobs a worker holds when it dies, is killed or leaves go back to the front of the queue.

Workers are forked from a forkserver that has matplotlib imported already, so a new worker
starts warm. pebble's ProcessPool did this before; it could not do the above (its recycling
joins a plot's threads and blocks for ever, an exit with status 0 in a render went unnoticed
until the timeout, and it killed the worker alone, not what the worker started).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

from renderer.render.contain import kill_tree
from renderer.executors.base import RECYCLE_AFTER, process_died, timed_out, worker_died
from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput, describe
from renderer.executors.workers import Poller, Worker, context, readable
from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")
LEAVE_GRACE = 5.0  # seconds a worker asked to leave may take before it is killed
PIPELINE = 5  # jobs a worker holds at most during a backlog: the one it renders and four waiting
PIPELINE_UNDER = 0.25  # seconds: renders this short on average are pipelined (a long one would hold up the others)
# bytes: a bigger job waits for an idle worker. A worker reads its pipe only between renders, so
# the jobs queued behind a render must fit in the pipe's buffer (64 KiB by default on Linux,
# less if the system is short of pipe memory) for a send never to block the dispatcher.
PIPE_SAFE = 16 * 1024
MAX_PAUSE = 0.05  # seconds the dispatcher lets results gather while every worker holds a job in reserve


class RenderPool:
    """Local worker processes; every submitted job's future resolves, never raises.

    If the dispatcher thread dies (a bug), `on_thread_death` is told its name, the workers are
    killed, and every render queued, in flight or submitted later fails as WorkerDied."""

    def __init__(self, workers: int, timeout: float, max_tasks: int = RECYCLE_AFTER,
                 stage_in: str | None = None, on_thread_death: Died | None = None) -> None:
        self.timeout = timeout
        self.on_thread_death = on_thread_death
        self.stage_in = stage_in  # the output folder: workers write their files there (renderer.render.worker.serve)
        self.size = max(1, workers)
        self.max_tasks = max(1, max_tasks)
        self._lock = threading.Lock()
        self._queue: deque[tuple[RenderJob, Future]] = deque()
        self._closing = self._abandon = self._closed = False
        self._broken: str | None = None  # why the dispatcher died: every render fails with it
        self._thread: threading.Thread | None = None
        self._workers: list[Worker] = []  # serving or idle
        self._ending: list[Worker] = []  # leaving or killed: waiting for their exit
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._hungry = True  # the dispatcher would hand a new job out: a submit wakes it
        self._render_s = 1.0  # the recent renders' duration (moving average): short ones are pipelined
        self._poller = Poller()
        self._ctx = None
        atexit.register(self._at_exit)

    def submit(self, job: RenderJob) -> "Future[RenderOutput | RenderFailure]":
        future: Future = Future()
        with self._lock:
            if self._broken is not None:  # no callback is added yet: none runs under the lock
                future.set_result(worker_died(job.name, self._broken))
                return future
            if self._closing:
                raise RuntimeError("the render pool is closed")
            self._queue.append((job, future))
            if self._thread is None:
                self._thread = guarded_thread("plotboard-pool", self._serve, self.on_thread_death, self._died)
                self._thread.start()
            hungry = self._hungry
        if hungry:  # else every worker is busy: the next result wakes the dispatcher anyway
            self._wake()
        return future

    def close(self, wait: bool = True) -> None:
        """Stop taking work; with wait, let queued renders and those in flight finish (each
        bounded by its timeout), else fail them as cancelled. Every worker is gone after it.

        Closing again does nothing; a close that was interrupted can be repeated."""
        if self._closed:
            return
        with self._lock:
            self._closing = True
            self._abandon = self._abandon or not wait
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join()
        self._closed = True
        atexit.unregister(self._at_exit)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _at_exit(self) -> None:
        self.close(wait=False)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already awake, or closed

    # -- the dispatcher thread ---------------------------------------------------------------

    def _died(self, exc: BaseException) -> None:
        """The dispatcher died (logged already): kill the workers, and never leave a future
        unresolved; renders submitted from now on fail at once."""
        why = f"the render pool's dispatcher thread died ({describe(exc)})"
        with self._lock:
            self._broken = why
            queued, self._queue = list(self._queue), deque()
        for w in self._workers + self._ending:
            w.kill()
            for job, future in w.tasks:
                if not future.done():
                    future.set_result(worker_died(job.name, why))
        for job, future in queued:
            future.set_result(worker_died(job.name, why))
        for w in self._workers + self._ending:
            self._reap(w)  # killed: they exit at once (multiprocessing waits for them at exit)
        self._workers, self._ending = [], []

    def _serve(self) -> None:
        while True:
            with self._lock:
                closing, abandon = self._closing, self._abandon
            if abandon:
                for w in [w for w in self._workers if w.tasks]:
                    self._kill(w, _cancelled(w.tasks[0][0]))  # what it held besides goes back to the queue
                with self._lock:
                    cancelled, self._queue = list(self._queue), deque()
                for job, future in cancelled:
                    future.set_result(_cancelled(job))
            self._dispatch()
            if closing and not self._queue and not any(w.tasks for w in self._workers):
                break
            pause = self._pause()
            if pause:
                time.sleep(pause)
            self._step()
        self._shut_down()

    def _dispatch(self) -> None:
        """Hand queued jobs to idle workers, starting workers up to the pool's size; during a
        backlog of short renders, to busy workers too (PIPELINE)."""
        from multiprocessing.reduction import ForkingPickler

        while True:
            with self._lock:
                target = self._target()
                self._hungry = target is not None
                if not self._queue or target is None:
                    return
                job, future = self._queue.popleft()
            if target is _NEW:
                try:
                    target = self._start()
                except Exception as exc:  # noqa: BLE001 - e.g. no more processes allowed
                    future.set_result(worker_died(job.name, f"the render process could not start ({describe(exc)})"))
                    continue
            try:
                data = ForkingPickler.dumps(job)
            except Exception as exc:  # noqa: BLE001 - a job that cannot be pickled
                future.set_result(RenderFailure(job.name, describe(exc)))
                continue
            if target.tasks and len(data) > PIPE_SAFE:
                with self._lock:
                    self._queue.appendleft((job, future))  # it waits for an idle worker
                return
            if not target.tasks:
                target.deadline = time.monotonic() + self.timeout
            target.tasks.append((job, future))
            try:
                target.conn.send_bytes(data)
            except (OSError, ValueError):
                pass  # it died: its exit is reported with its status

    def _target(self) -> "Worker | object | None":
        """The worker the next queued job goes to, _NEW to start one, or None (with the lock held)."""
        idle = next((w for w in self._workers if not w.tasks), None)
        if idle is not None:
            return idle
        if len(self._workers) < self.size:
            return _NEW
        if self._render_s < PIPELINE_UNDER and len(self._queue) >= len(self._workers):
            fewest = min(self._workers, key=lambda w: len(w.tasks))
            if len(fewest.tasks) < PIPELINE:
                return fewest
        return None

    def _pause(self) -> float:
        """Seconds results may gather before this thread looks: while every worker renders and
        has jobs waiting, half of what the least stocked one holds (none runs dry meanwhile)."""
        if len(self._workers) < self.size:
            return 0.0
        least = min((len(w.tasks) for w in self._workers), default=0)
        return min(MAX_PAUSE, self._render_s * (least - 1) / 2) if least >= 2 else 0.0

    def _start(self) -> Worker:
        from renderer.render.worker import serve

        if self._ctx is None:
            self._ctx = context()
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=serve, args=(theirs, os.getpid(), self.max_tasks, self.stage_in),
                                 name="plotboard-render", daemon=False)
        try:
            proc.start()
        finally:
            theirs.close()
        worker = Worker(proc, ours)
        self._workers.append(worker)
        return worker

    def _step(self) -> None:
        """Wait for a result, an exit, a deadline or a wake-up, and handle what happened."""
        watched: list[Any] = [self._wake_r]
        for w in self._workers:
            watched += [w.conn, w.proc.sentinel] if w.task else [w.proc.sentinel]
        watched += [w.proc.sentinel for w in self._ending]
        deadline = min([w.deadline for w in self._workers + self._ending], default=float("inf"))
        ready = set(self._poller.wait(watched, timeout=max(0.0, min(deadline - time.monotonic(), 3600.0))))
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 4096)  # more bytes than that left: the next poll returns at once
            except BlockingIOError:
                pass
        for w in list(self._workers):
            if w.tasks and (w.conn in ready or w.proc.sentinel in ready):
                while w in self._workers and w.tasks and readable(w.conn) and self._result(w):
                    pass  # a pipelined worker may have sent several
        for w in list(self._workers):
            if w.proc.sentinel in ready:
                self._exited(w)
        for w in list(self._ending):
            if w.proc.sentinel in ready:
                self._ending.remove(w)
                self._reap(w)
        now = time.monotonic()
        for w in list(self._workers):
            if w.tasks and now >= w.deadline:
                self._kill(w, timed_out(w.task[0].name, self.timeout))
        for w in list(self._ending):
            if now >= w.deadline:
                w.kill()
                w.deadline = float("inf")

    def _result(self, w: Worker) -> bool:
        """Take a result the worker sent; False if it is gone instead (its exit says how)."""
        job, future = w.tasks[0]
        try:
            outcome, leaving = w.conn.recv()
        except (EOFError, OSError):
            return False
        except Exception as exc:  # noqa: BLE001 - a result that cannot be unpickled
            outcome, leaving = RenderFailure(job.name, describe(exc)), False
        w.tasks.popleft()
        now = time.monotonic()
        self._render_s += 0.1 * (now - (w.deadline - self.timeout) - self._render_s)
        w.deadline = now + self.timeout if w.tasks else float("inf")
        future.set_result(outcome)
        if leaving:
            self._give_back(w)
            self._retire(w, now + LEAVE_GRACE)
        return True

    def _give_back(self, w: Worker) -> None:
        """The jobs waiting in a worker's pipe that it will never read go back to the queue's front."""
        with self._lock:
            self._queue.extendleft(reversed(w.tasks))
        w.tasks.clear()

    def _exited(self, w: Worker) -> None:
        """A worker ended on its own: the render it ran (if any) died with it."""
        self._workers.remove(w)
        if w.tasks:
            job, future = w.tasks.popleft()
            self._give_back(w)
            w.proc.join()
            future.set_result(process_died(job.name, w.proc.exitcode))
        self._reap(w)

    def _kill(self, w: Worker, outcome: RenderFailure) -> None:
        """End a worker's render: kill it with everything it started, report `outcome`."""
        w.kill()
        future = w.tasks.popleft()[1]
        self._give_back(w)
        self._retire(w, float("inf"))
        future.set_result(outcome)

    def _retire(self, w: Worker, deadline: float) -> None:
        self._workers.remove(w)
        w.deadline = deadline
        self._ending.append(w)

    def _reap(self, w: Worker) -> None:
        w.proc.join()
        kill_tree(w.proc.pid)  # what it started and left in its group
        w.conn.close()
        w.proc.close()

    def _shut_down(self) -> None:
        """Ask idle workers to leave, kill those that do not in time, and wait for every exit."""
        for w in list(self._workers):
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
            self._retire(w, time.monotonic() + LEAVE_GRACE)
        while self._ending:
            self._step()


_NEW = object()  # _target's answer: start a worker for the job


def _cancelled(job: RenderJob) -> RenderFailure:
    return RenderFailure(job.name, "Cancelled: plotboard stopped before this render finished",
                         kind=FailureKind.CANCELLED)
