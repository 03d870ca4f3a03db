"""Reading back a file plotboard wrote or was given (the board file, its bookkeeping, status.json,
plot and board modules): only a regular file, only up to a size, never blocking.

`open(path).read()` blocks for ever on a FIFO and reads `/dev/zero` until memory is gone; a
device may even do something when opened. `read_file` looks at what the path is first (a
special file is never opened), then opens it with O_NONBLOCK and checks the open descriptor
again (the path may have been swapped meanwhile), and reads at most `limit` bytes. A file it
will not read raises RefusedFile, an OSError whose `strerror` says why in a few words, so
callers that name a file and its `strerror` on one line need nothing more.

A basic module: it imports nothing from plotboard.
"""

from __future__ import annotations

import errno
import os
import stat

MiB = 1024 * 1024
BOARD_FILE_LIMIT = 64 * MiB  # the board file (tens of thousands of charts fit in a few MiB)
BOOKKEEPING_LIMIT = 512 * MiB  # state.json, pages.json, status.json: a record per chart
SOURCE_LIMIT = 64 * MiB  # a plot or board module's source


class RefusedFile(OSError):
    """A file plotboard will not read: not a regular file, or larger than the limit."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def not_regular(path: str | os.PathLike) -> bool:
    """Whether something other than a regular file is at `path` (a folder, a FIFO, ...), where
    plotboard is to put a file by rename; False when nothing is there. Other errors (no
    permission to look) are raised as OSError."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def kind(mode: int) -> str:
    """What a file of this st_mode is, in words ('a FIFO', 'a character device', ...)."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def refusal(st: os.stat_result, limit: int) -> str | None:
    """Why a file of this stat is not read (not regular, or larger than `limit` bytes), or None."""
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file but {kind(st.st_mode)}"
    if st.st_size > limit:
        return f"larger than {_size(limit)} ({_size(st.st_size)})"
    return None


def read_file(path: str | os.PathLike, limit: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them.

    Raises RefusedFile for anything else (a FIFO, a device, a socket, a folder, a file larger
    than `limit`, also one that grows past it while being read) and OSError as open() would
    (missing, no permission; ELOOP for a symbolic link without `follow_symlinks`). Never blocks
    on the file: a FIFO is not opened, and one swapped in after the first look is opened
    without blocking and refused.
    """
    first = os.stat(path, follow_symlinks=follow_symlinks)
    why = refusal(first, limit)
    if why:
        raise RefusedFile(path, why)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        why = refusal(os.fstat(fd), limit)
        if why:
            raise RefusedFile(path, why)
        return read_fd(fd, path, limit)
    finally:
        os.close(fd)


def digest_file(path: str | os.PathLike, limit: int) -> str:
    """sha256 (hex) of the first `limit` bytes of the regular file at `path`, read in chunks
    (a large file costs no memory), never blocking; RefusedFile for anything but a regular
    file, OSError as open() would."""
    import hashlib

    first = os.stat(path)
    if not stat.S_ISREG(first.st_mode):
        raise RefusedFile(path, f"not a regular file but {kind(first.st_mode)}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RefusedFile(path, f"not a regular file but {kind(st.st_mode)}")
        digest, left = hashlib.sha256(), limit
        while left > 0:
            chunk = os.read(fd, min(left, 4 * MiB))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def read_fd(fd: int, path: str | os.PathLike, limit: int) -> bytes:
    """Up to `limit` bytes of the open regular file `fd` from where it stands; RefusedFile
    (naming `path`) when there are more."""
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, min(limit + 1 - total, 4 * MiB))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise RefusedFile(path, f"larger than {_size(limit)}")


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n} bytes"
