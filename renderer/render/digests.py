"""Digests of source files (plot and board modules), read again only when a file's stat changes.

Every fingerprint needs the digest of the chart's plot module, and every render in a worker
checks that the board modules it loaded are still current: reading the files each time costs a
read per render and, in the daemon, two inotify events for each open. A digest is kept with the
file's stat (inode, size, mtime, ctime) and trusted while the stat is unchanged, but only once
the file is older than the clock's granularity: a file written twice within one tick of the
file system's clock, with the same size, keeps its stat, so a recent file is always read again
(the "racy" case git's index has too). Only a regular file is read (renderer.readfile): a module
turned into a FIFO or a link to /dev/zero has no digest, and never hangs the daemon.
"""

from __future__ import annotations

import hashlib
import os
import time

from renderer.readfile import SOURCE_LIMIT, read_file, refusal

# Older than this (seconds), a file's stat tells a change: file system clocks tick in
# milliseconds at worst, and a second is far beyond any of them.
SETTLED_S = 1.0

_known: dict[str, tuple[tuple[int, ...], str]] = {}  # path -> (stat key, sha256)


def file_digest(path: str, clock=time.time) -> str | None:
    """sha256 of the file's bytes (hex), or None when it cannot be read or is not a regular file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if refusal(st, SOURCE_LIMIT):
        _known.pop(path, None)
        return None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    known = _known.get(path)
    if known is not None and known[0] == key:
        return known[1]
    try:
        digest = hashlib.sha256(read_file(path, SOURCE_LIMIT)).hexdigest()
    except (OSError, ValueError):
        return None
    if clock() - max(st.st_mtime, st.st_ctime) > SETTLED_S:
        _known[path] = (key, digest)
    else:
        _known.pop(path, None)
    return digest
