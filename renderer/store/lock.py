"""One writer per board: an OS lock on the board file's folder.

The lock is an `flock` on the folder itself, not on a file in `.plotboard/`: `rm -rf
.plotboard` (git clean, a tmp cleaner) cannot take it away from its holder, so a second
writer can never get it while the first lives, and the kernel releases it when the holder
dies. `.plotboard/lock` only says who holds it, for messages; when that file is gone, the
holder's pid is read from /proc/locks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from renderer.board.model import Board
from renderer.errors import PlotboardError
from renderer.store.folders import ensure_folders

log = logging.getLogger("plotboard")

INFO_FILE = "lock"
RUN, BUILD = "plotboard run", "plotboard build"
POLL = 0.1  # how often a waiting command tries the lock again
BUILD_WAIT = 600.0  # longest a build (or a starting run) waits for a build that holds the board


@dataclass(frozen=True)
class Holder:
    who: str  # RUN, BUILD, or "another plotboard"
    pid: int | None

    def __str__(self) -> str:
        return f"{self.who} (pid {self.pid})" if self.pid else self.who


class BoardBusy(PlotboardError):
    """Another plotboard holds the board."""

    exit_code = 1

    def __init__(self, board: Board, holder: Holder, waited: float = 0.0) -> None:
        self.holder = holder
        after = f" after waiting {waited:g}s" if waited else ""
        super().__init__(f"{board.path}: the board is in use by {holder}{after}")


class BoardLock:
    """The held lock; `refresh` rewrites `.plotboard/lock` if something deleted it."""

    def __init__(self, board: Board, fd: int, who: str) -> None:
        self.board, self.fd, self.who = board, fd, who

    def refresh(self) -> None:
        path = self.board.state_dir / INFO_FILE
        try:
            if path.read_bytes() == self._text().encode():
                return
        except OSError:
            pass
        try:
            self.board.state_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(self._text())
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc.strerror or exc)

    def _text(self) -> str:
        return f"{self.who} (pid {os.getpid()})\n"


@contextmanager
def board_lock(board: Board, who: str = BUILD, wait: float = 0.0,
               cancel: Callable[[], bool] | None = None) -> Iterator[BoardLock | None]:
    """Hold the board's lock; if a build holds it, wait up to `wait` seconds for it (yields
    None if `cancel()` turns true meanwhile).

    Never waits for a `plotboard run`: raises BoardBusy at once, naming it.
    """
    fd = os.open(board.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = find_holder(board, fd)
                if holder.who == RUN or time.monotonic() >= deadline:
                    raise BoardBusy(board, holder, waited=wait if holder.who != RUN else 0.0) from None
                if not announced:
                    log.info("waiting for %s to finish with this board (at most %gs)", holder, wait)
                    announced = True
                if cancel is not None and cancel():
                    yield None
                    return
                time.sleep(POLL)
        ensure_folders(board)  # under the lock: a folder that cannot be used stops here, nothing written
        lock = BoardLock(board, fd, who)
        lock.refresh()
        yield lock
    finally:
        os.close(fd)


def find_holder(board: Board, fd: int) -> Holder:
    """Who holds the lock on the folder open as `fd`: from `.plotboard/lock` if it names the
    process /proc/locks names, else from /proc/locks and that process's command line."""
    pid = _lock_pid(os.fstat(fd))
    try:
        text = (board.state_dir / INFO_FILE).read_text(errors="replace")
    except OSError:
        text = ""
    m = re.fullmatch(r"(plotboard run|plotboard build) \(pid (\d+)\)\s*", text)
    if m and (pid is None or int(m[2]) == pid):
        return Holder(m[1], int(m[2]))
    return Holder(_command(pid), pid)


def _lock_pid(st: os.stat_result) -> int | None:
    """The pid /proc/locks gives for an flock on the file or folder with this stat."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    exact = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    loose = None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[0].endswith("->"):
            continue
        if parts[5] == exact:
            return int(parts[4])
        if parts[5].rsplit(":", 1)[-1] == str(st.st_ino):
            loose = int(parts[4])  # device numbers can differ inside containers
    return loose


def _command(pid: int | None) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid else []
    except OSError:
        args = []
    if b"build" in args:
        return BUILD
    if b"run" in args or b"demo" in args:
        return RUN
    return "another plotboard"
