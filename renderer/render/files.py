"""A render's files, written where they will be published: each to a hidden temporary file in
the destination folder (`write_temp`), moved into place later by renderer.store.publish.

Local render processes stage their images themselves (`stage`), so publishing a render is a
rename in the daemon: creating, writing and renaming a file cost 125-155 us of CPU here, most
of the daemon's work for a tiny chart.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from renderer.errors import PublishError
from renderer.readfile import read_file

# Exactly the names _write_temp makes, so a user's own hidden .tmp file is never deleted.
TEMP_RE = re.compile(r"\..+\.[0-9a-f]{8}\.tmp\Z")


def safe_path(folder: Path, name: str) -> Path:
    """folder/name, refusing any name that would leave the folder."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise PublishError(f"refusing to write {name!r}: not a plain file name")
    return folder / name


@dataclass(frozen=True)
class Staged:
    """A file a render process wrote already (renderer.render.worker): `temp`, the name of its hidden
    temporary file next to the target, or None when the target held these very bytes."""

    temp: str | None


def stage(folder: str, files: dict[str, bytes]) -> dict[str, bytes | Staged]:
    """Write each file to a hidden temporary file in `folder`, for write_many to move into place.

    Render processes do this, so that the daemon never handles an image's bytes: it only
    renames. A file whose target holds the same bytes is not written. On any problem nothing
    stays staged and the bytes are given back: the publishing process writes them itself
    (making a deleted folder again) or reports what went wrong, as it would have anyway.
    """
    staged: dict[str, bytes | Staged] = {}
    try:
        for name, data in files.items():
            target = safe_path(Path(folder), name)
            staged[name] = Staged(None if same_bytes(target, data) else write_temp(Path(folder), name, data, False).name)
    except (OSError, PublishError):
        discard(folder, staged)
        return files
    return staged


def discard(folder: str | Path, files: dict[str, bytes | Staged]) -> None:
    """Delete the temporary files of staged files that will not be published."""
    for data in files.values():
        if isinstance(data, Staged) and data.temp is not None and TEMP_RE.match(data.temp):
            unlink_quietly(Path(folder) / data.temp)


_io = threading.local()


def io_waited() -> float:
    """Seconds this thread has waited for the disk (fsync) in all: a cost that is not CPU time."""
    return getattr(_io, "seconds", 0.0)


def write_temp(folder: Path, name: str, data: bytes, durable: bool) -> Path:
    temp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 lets the umask decide, giving 0644 under the usual umask
    # (tempfile.mkstemp would create 0600, which a web server running as another user cannot read).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            started = time.monotonic()
            os.fsync(fd)
            _io.seconds = io_waited() + time.monotonic() - started
    except OSError:
        os.close(fd)
        unlink_quietly(temp)
        raise
    os.close(fd)
    return temp


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def same_bytes(target: Path, data: bytes) -> bool:
    """Whether target is a regular file (not a link to one) holding exactly these bytes."""
    try:
        st = os.lstat(target)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(data):
            return False
        return read_file(target, len(data), follow_symlinks=False) == data  # never blocks on a FIFO swapped in
    except OSError:
        return False
