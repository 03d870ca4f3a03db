"""One writer per board: an OS lock on a file only the board's owner can open, and a guard on the
board file itself against `rm -rf .plotboard`.

The lock is an `flock` on STATE/lock (`.plotboard/lock` by default): mode 0600, opened with
O_NOFOLLOW, so no other user can open it, let alone lock it, and a symbolic link planted there is
replaced, never followed. A lock file of another mode (an old plotboard's, one planted by
someone) is replaced before it is used. The lock file also names its holder (`plotboard run (pid
1234)`) and the board file, written through the locked descriptor, for the messages of the
commands it stops; a board file beside it (or any, when the state folder is outside the board's
folder) that finds another existing board file named there is refused: two boards cannot share
one state folder (SharedState).

`flock` locks an inode: after `rm -rf .plotboard`, the holder would lock a deleted file while a
newcomer locks a new one. So the holder also locks the board file, which deleting `.plotboard/`
cannot take away (and two board files in one folder do not share), and a newcomer that got the
lock file checks it too; the daemon locks the new board file when an editor replaced it. Any
user who can read the board file can lock it as well: a lock on it held by a process of another user
is not plotboard's, and neither stops nor delays a command (the lock file decides alone then);
one of root's counts as the board's user's.
The kernel releases both locks when the holder dies. The daemon re-checks both (`refresh`) every
few seconds, and takes the lock file again when something deleted or replaced it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from renderer.board.model import Board
from renderer.errors import PlotboardError
from renderer.store.folders import FolderError, ensure_folders

log = logging.getLogger("plotboard")

LOCK_FILE = "lock"
INFO_FILE = LOCK_FILE  # the lock file names its holder
RUN, BUILD = "plotboard run", "plotboard build"
POLL = 0.1  # how often a waiting command tries the lock again
BUILD_WAIT = 600.0  # longest a build (or a starting run) waits for a build that holds the board
MAX_INFO = 4096  # bytes of the holder's name read back from the lock file


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


class SharedState(PlotboardError):
    """Another board file's bookkeeping is in this board's state folder."""

    exit_code = 2


class BoardLock:
    """The held lock: `fd`, the locked lock file; `guard`, the board file, locked too unless a
    process of another user holds a lock on it. `refresh` takes both again when something took
    them away (`rm -rf .plotboard`, a replaced lock file, another user's lock let go)."""

    def __init__(self, board: Board, fd: int, guard: int | None, guarded: bool, who: str) -> None:
        self.board, self.fd, self.guard, self.guarded, self.who = board, fd, guard, guarded, who
        self._missed = 0  # refreshes in a row that found a new lock file locked by another process

    def refresh(self) -> None:
        path = self.board.state_dir / LOCK_FILE
        if self.guard is not None and not _is_at(self.guard, self.board.path):
            self._guard_again()  # an editor replaced the board file
        if not self.guarded and self.guard is not None:
            self.guarded = _try_flock(self.guard)
        if _is_at(self.fd, path):
            return
        try:
            self.board.state_dir.mkdir(parents=True, exist_ok=True)
            fd = open_lock_file(path)
        except (OSError, PlotboardError) as exc:
            log.warning("cannot make %s again: %s", path, getattr(exc, "strerror", None) or exc)
            return
        if not _try_flock(fd) or not _is_at(fd, path):
            os.close(fd)
            self._missed += 1
            if self._missed == 2:  # not a newcomer that locked it for a moment and was turned away
                log.error("%s was deleted, and another process locked the new one: stop the other writer "
                          "of this board", path)
            return
        os.close(self.fd)
        self.fd, self._missed = fd, 0
        self.name_holder()

    def _guard_again(self) -> None:
        new = _open_guard(self.board.path)
        if new is None:
            return
        if _try_flock(new):
            os.dup2(new, self.guard, inheritable=False)  # the same descriptor number: board_lock closes it
            self.guarded = True
        os.close(new)

    def name_holder(self) -> None:
        """Write `WHO (pid N)` and the board file's path (a JSON string) into the lock file,
        through the locked descriptor."""
        text = f"{self.who} (pid {os.getpid()})\n{json.dumps(str(self.board.path))}\n".encode()
        try:
            if os.pread(self.fd, MAX_INFO, 0) != text:
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, text, 0)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.board.state_dir / LOCK_FILE, exc.strerror or exc)

    def close(self) -> None:
        os.close(self.fd)


@contextmanager
def board_lock(board: Board, who: str = BUILD, wait: float = 0.0,
               cancel: Callable[[], bool] | None = None) -> Iterator[BoardLock | None]:
    """Hold the board's lock; if a build holds it, wait up to `wait` seconds for it (yields
    None if `cancel()` turns true meanwhile).

    Never waits for a `plotboard run`: raises BoardBusy at once, naming it. The folders are
    made (or checked) first: one that cannot be used stops the command before anything is written.
    """
    ensure_folders(board)
    guard = _open_guard(board.path)
    try:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            held = _take(board, guard, who)
            if isinstance(held, BoardLock):
                break
            if held.who == RUN or time.monotonic() >= deadline:
                raise BoardBusy(board, held, waited=wait if held.who != RUN else 0.0)
            if not announced:
                log.info("waiting for %s to finish with this board (at most %gs)", held, wait)
                announced = True
            if cancel is not None and cancel():
                yield None
                return
            time.sleep(POLL)
        held.name_holder()
        try:
            yield held
        finally:
            held.close()
    finally:
        if guard is not None:
            os.close(guard)


def _open_guard(path: Path) -> int | None:
    """The board file open for the guard's lock (None when it cannot be read: no guard)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None


def _take(board: Board, guard: int | None, who: str) -> BoardLock | Holder:
    """Both locks (the lock file, then the board folder), or who holds the board."""
    path = board.state_dir / LOCK_FILE
    while True:
        fd = open_lock_file(path)
        other = _board_of(fd)
        if other is not None and _shared(board, other):
            os.close(fd)
            raise SharedState(f"{board.path}: the state folder {board.state_dir} belongs to the board file "
                              f"{other}: two boards cannot share one; set [board] state in {board.path.name}")
        if not _try_flock(fd):
            try:
                return _holder_of(fd)
            finally:
                os.close(fd)
        if _is_at(fd, path):
            break
        os.close(fd)  # deleted or replaced between open and lock: lock the one there now
    if guard is None or _try_flock(guard):
        return BoardLock(board, fd, guard, guard is not None, who)
    pid = _lock_pid(os.fstat(guard))
    if _owner(pid) not in (None, 0, os.geteuid()):  # root's is taken as the board's own user's
        log.info("a process of another user (pid %d) holds a lock on %s: not waiting for it", pid, board.path)
        return BoardLock(board, fd, guard, False, who)
    os.close(fd)
    return Holder(_command(pid), pid)  # a plotboard whose .plotboard/ was deleted, or another of this user's


def _shared(board: Board, other: Path) -> bool:
    """Whether the board file `other`, named in this board's lock file, uses the same state
    folder: it is beside this one, or the state folder is outside this board's folder (a copied
    board folder carries its own state folder along, naming the original)."""
    if other == board.path or not other.exists():
        return False
    return other.parent == board.path.parent or not board.state_dir.is_relative_to(board.root)


def _board_of(fd: int) -> Path | None:
    """The board file the lock file's last holder named (None if it named none)."""
    try:
        text = os.pread(fd, MAX_INFO, 0).decode(errors="surrogateescape")
        named = json.loads(text.split("\n")[1])
    except (OSError, ValueError, IndexError, RecursionError):
        return None
    return Path(named) if isinstance(named, str) and named.startswith("/") else None


def open_lock_file(path: Path) -> int:
    """The lock file open for reading and writing: a regular file of this user's, mode 0600.
    Anything else found there (a symbolic link, a FIFO, a file other users may open) is removed
    first, never followed or used; FolderError when that cannot be done."""
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if not os.path.lexists(path) or exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EACCES,
                                                              errno.EPERM, errno.EOPNOTSUPP):
                raise FolderError(f"cannot open {path}: {exc.strerror or exc}") from None
            _remove(path, "it is not a file of plotboard's user")
            continue
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 == 0 and st.st_uid in (os.geteuid(), _owner_of(path)):
            return fd
        os.close(fd)
        _remove(path, "other users could open it")
    raise FolderError(f"cannot make {path} a lock file: something keeps replacing it")


def _owner_of(path: Path) -> int | None:
    """The owner of the lock file's folder: root may use a lock file of the board's own user."""
    try:
        return os.stat(path.parent).st_uid
    except OSError:
        return None


def _remove(path: Path, why: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise FolderError(f"{path} cannot be the board's lock file ({why}) and cannot be removed "
                          f"({exc.strerror or exc}): move it away") from None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path` (not deleted, not replaced)."""
    try:
        there, mine = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _holder_of(fd: int) -> Holder:
    """Who holds the lock file open as `fd`: as it names itself, if /proc/locks names the same
    process, else from /proc/locks and that process's command line."""
    pid = _lock_pid(os.fstat(fd))
    try:
        text = os.pread(fd, MAX_INFO, 0).decode(errors="replace")
    except OSError:
        text = ""
    m = re.fullmatch(r"(plotboard run|plotboard build) \(pid (\d+)\)\s*", text.split("\n")[0])
    if m and (pid is None or int(m[2]) == pid):
        return Holder(m[1], int(m[2]))
    return Holder(_command(pid), pid)


def _owner(pid: int | None) -> int | None:
    """The user a process runs as, or None when it cannot be told."""
    if not pid:
        return None
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


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
