"""What keeps a plot's processes inside its render: a render process leads a process group of
its own and is a child subreaper, and the processes a render leaves are killed when it ends.

- The process group: children and grandchildren a plot starts are in it unless they leave it
  (setsid, setpgid); the pool kills the whole group when it kills a render process.
- The subreaper (prctl PR_SET_CHILD_SUBREAPER): a descendant whose parent exits is re-parented
  to the render process instead of init, so one that left the group (a daemonising double fork)
  is still found below it, and `kill_descendants` ends it.

Linux only, as plotboard is; where prctl is missing the group still does most of the work.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
SWEEPS = 20  # rounds of finding and killing descendants (a plot's thread may keep forking)


def lead_own_group() -> None:
    """Make the calling process a process group leader and a subreaper for its descendants."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # a session leader already leads its group
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before their children (from /proc/PID/task/*/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for kid in _children(parent):
            if kid not in found:
                found.append(kid)
                todo.append(kid)
    return found


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            kids.extend(int(k) for k in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except (OSError, ValueError):
            pass
    return kids


def kill_tree(pid: int) -> None:
    """SIGKILL `pid`'s process group and every process below it (from another process)."""
    for kid in descendants(pid):
        _kill(kid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_descendants() -> None:
    """In a render process: SIGKILL every process below this one and reap them.

    As a subreaper this process inherits orphans: a killed child's children become its own,
    found and reaped in the next round; nothing a render started outlives it."""
    me = os.getpid()
    for _ in range(SWEEPS):
        found = descendants(me)
        if not found:
            return
        for pid in found:
            _kill(pid)
        for pid in _children(me):
            if pid in found:
                try:
                    os.waitpid(pid, 0)  # killed: returns as soon as it has died
                except ChildProcessError:
                    pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def die_with_owner(owner: int) -> None:
    """In a worker: kill this worker as soon as the process that owns the pool is gone.

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
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)  # the worker and what its render started
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
