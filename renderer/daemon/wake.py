"""How other threads and signals wake the daemon's loop without touching its state: a self-pipe,
and the flags they set (`Requests`), which only the loop acts on."""

from __future__ import annotations

import os
import select
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from renderer.text import count

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_early: list[int] = []  # signals that came before the daemon could handle them


def catch_early_signals() -> None:
    """Record SIGTERM, SIGINT and SIGHUP from now until `signals_to` handles them: a signal
    while `run` starts (or waits for the board) must not kill it."""
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, frame: _early.append(signum))


class Wake:
    """A self-pipe: other threads and signal handlers wake the loop by writing a byte."""

    def __init__(self) -> None:
        self.r, self.w = -1, -1

    def __enter__(self) -> "Wake":
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)
        self.r = self.w = -1

    def __call__(self) -> None:
        try:
            os.write(self.w, b"\0")
        except (BlockingIOError, OSError):
            pass  # full (a wake-up is pending anyway) or closed (shutting down)

    def wait(self, timeout: float | None) -> None:
        """Sleep until woken or `timeout` seconds have passed, then empty the pipe."""
        if timeout is None or timeout > 0:
            select.select([self.r], [], [], timeout)
        try:
            while os.read(self.r, 4096):
                pass
        except BlockingIOError:
            pass


@contextmanager
def signals_to(handler: Callable[[int, object], None], wake: Wake) -> Iterator[None]:
    """Send SIGTERM, SIGINT and SIGHUP to `handler`, which must only set flags: the signal's
    byte on the wake-up fd wakes the loop. Only in the main thread; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    old_fd = signal.set_wakeup_fd(wake.w, warn_on_full_buffer=False)
    while _early:
        handler(_early.pop(0), None)
    try:
        yield
    finally:
        signal.set_wakeup_fd(old_fd)
        for sig, previous in old.items():
            signal.signal(sig, previous)


class ThreadDied(Exception):
    """A thread the daemon depends on has died: the loop stops, as gunicorn's arbiter halts."""


class Requests:
    """What signals and the daemon's other threads ask of its loop, as flags. Handlers only set
    them (the signal's byte on the wake-up fd, or `wake`, wakes the loop); the loop acts."""

    def __init__(self, wake: Callable[[], None], external_stop: threading.Event | None = None) -> None:
        self.wake = wake
        self.external_stop = external_stop  # a daemon run from another thread stops when it is set
        self.stopping = False  # SIGTERM or SIGINT: drain and stop
        self.hard_stop = False  # a second one: stop without waiting for renders in flight
        self.reload = False  # SIGHUP: read the board file again
        self.thread_died: str | None = None  # the first thread the daemon needs that died

    def on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        elif self.stopping:
            self.hard_stop = True
        else:
            self.stopping = True

    def on_thread_death(self, name: str) -> None:
        """Called in the thread that died (renderer.threads): record and wake only."""
        if self.thread_died is None:
            self.thread_died = name
        self.wake()

    def check_threads(self, running: int) -> None:
        """Raises ThreadDied once a thread the daemon needs has died (`running`: renders it abandons)."""
        if self.thread_died is not None:
            raise ThreadDied(f"thread {self.thread_died} died"
                             + (f", abandoning {count(running, 'render')} in flight" if running else ""))

    def stop_requested(self) -> bool:
        if self.external_stop is not None and self.external_stop.is_set() and not self.stopping:
            self.stopping = True
        return self.stopping
