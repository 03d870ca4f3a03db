"""A folder setting of the board file (`output`, `state`, `templates`) made an absolute path the
file system can use, or refused at load with the reason (the loader names the file and the key).

Resolving a path through a loop of symbolic links (`ln -s loop loop`) raises RuntimeError in
Python 3.11 (OSError from 3.13), and a name longer than the file system allows fails only when
plotboard first writes there: both would stop `build` with a traceback, and a reload of the
daemon with its loop. Here they are a ValueError, like any other wrong value.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

NAME_MAX = 255  # bytes of one name in a path (Linux, most file systems)
PATH_MAX = 4096  # bytes of a whole path, its final NUL included
# A folder plotboard writes in must leave room for the files it writes below it: a subfolder
# (status/, groups/, static/) and a file in it, each name up to NAME_MAX, with their slashes.
FOLDER_MAX = PATH_MAX - 1 - 2 * (NAME_MAX + 1)


def usable_folder(root: Path, value: str, must_exist: bool = False) -> Path:
    """`value` (relative to `root`) as an absolute path, symbolic links resolved; ValueError
    saying why when it cannot be a folder plotboard uses."""
    path = root / value
    _check_length(path, value)
    try:
        folder = path.resolve()
    except RuntimeError:  # Python 3.11: "Symlink loop from ..."
        raise ValueError(f"{_shown(value)} goes through a loop of symbolic links") from None
    except OSError as exc:
        raise ValueError(f"{_shown(value)}: {exc.strerror or exc}") from None
    _check_length(folder, value)
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # a loop (Python 3.13 resolves without raising), no permission
        raise ValueError(f"{_shown(value)}: {exc.strerror or exc}") from None
    if must_exist and (st is None or not stat.S_ISDIR(st.st_mode)):
        raise ValueError(f"no such folder: {folder}")
    return folder


def _check_length(path: Path, value: str) -> None:
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > NAME_MAX:
        raise ValueError(f"{_shown(value)}: a name in it is {longest} bytes long, more than the {NAME_MAX} "
                         "a file system allows")
    size = len(os.fsencode(path))
    if size > FOLDER_MAX:
        raise ValueError(f"{_shown(value)}: {size} bytes as a full path, more than the {FOLDER_MAX} that leave "
                         "room for plotboard's files below it")


def _shown(text: str, limit: int = 60) -> str:
    """text quoted, its middle cut when long (a 300-character name is not printed whole)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit // 2]!r}…{text[-limit // 2:]!r} ({len(text)} characters)"
