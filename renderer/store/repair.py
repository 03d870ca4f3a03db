"""Self-repair: is each file plotboard published still there, as it wrote it?

After publishing a file, plotboard records its stamp (size, mtime in ns). A file that is
missing, no longer a regular file, or whose stamp changed (deleted, truncated, edited, replaced
by someone else) is damaged: the next `build`, or the daemon within REPAIR_EVERY seconds,
renders that chart again or rewrites the pages. Checking costs one `lstat` per published file,
never a read or a render.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

Stamp = list[int]  # [size, mtime_ns], a list so it survives JSON as it is


def stamp(path: str | Path) -> Stamp | None:
    """The file's stamp, or None when it is missing or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return [st.st_size, st.st_mtime_ns]


def stamps(folder: Path, names: list[str]) -> dict[str, Stamp]:
    """Stamps of the files just published (those that vanished meanwhile are left out)."""
    found, base = {}, os.fspath(folder)
    for name in names:
        s = stamp(os.path.join(base, name))  # not folder / name: a Path costs more than the lstat
        if s is not None:
            found[name] = s
    return found


def damaged(folder: Path, recorded: dict[str, Stamp], names: list[str]) -> list[str]:
    """The files among `names` that are missing or differ from their recorded stamp (a file
    without a recorded stamp only has to exist)."""
    bad, base = [], os.fspath(folder)
    for name in names:
        now, then = stamp(os.path.join(base, name)), recorded.get(name)
        if now is None or (then is not None and now != then):
            bad.append(name)
    return bad
