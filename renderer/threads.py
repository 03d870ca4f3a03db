"""Threads that others depend on: their work runs under a guard that reports their death.

A thread that dies of an unexpected error (a bug) must not leave its owner working on without
it, failing every render or waiting for ever. guarded_thread runs the thread's work so that such
an error is logged with its traceback, then the owner's `died` callback is told the thread's name
(it only records and wakes, as a signal handler does: the owner's own loop decides; the daemon
stops with exit status 1), then `cleanup` lets the object that started the thread resolve what
waits on it, so that a caller without a callback never hangs either.

A leaf module: it imports nothing from renderer, so every room may use it.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from renderer.text import one_line

log = logging.getLogger("plotboard")

Died = Callable[[str], None]  # told the name of the thread that died


def guarded_thread(name: str, work: Callable[[], None], died: Died | None = None,
                   cleanup: Callable[[BaseException], None] | None = None) -> threading.Thread:
    """A daemon thread named `name`, not yet started, that runs `work` under guard()."""
    return threading.Thread(target=guard, args=(work, died, cleanup), name=name, daemon=True)


def guard(work: Callable[[], None], died: Died | None = None,
          cleanup: Callable[[BaseException], None] | None = None) -> None:
    """Run `work`; if it raises, log that this thread died (with the traceback), tell `died`,
    then `cleanup(exc)`. `died` comes first, so an owner sees the death before the failures
    the cleanup hands out."""
    try:
        work()
    except BaseException as exc:  # noqa: BLE001 - any way out but returning is a death
        name = threading.current_thread().name
        log.exception("thread %s died: %s: %s", name, type(exc).__name__, one_line(str(exc)))
        if died is not None:
            died(name)
        if cleanup is not None:
            cleanup(exc)
