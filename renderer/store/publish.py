"""Atomic publishing into the output folder.

Every file goes to a hidden temporary file in the same folder and is moved into place with
os.replace, so a reader sees the old file or the new one, never part of one. Only the
bookkeeping in .plotboard/ is fsynced (`durable`): it holds each published file's stamp, so a
file that a crash of the machine left torn or old is found by the repair check
(renderer.store.repair) and written again at the next start. An fsync per image cost more of the
daemon's CPU than everything else it does for a render. Files whose bytes did not change are
not touched, so their mtime and ETag stay put. Local render processes write their temporary
files themselves (renderer.render.files.stage), so publishing a render is a rename in the daemon.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from renderer.errors import PublishError
from renderer.render.files import TEMP_RE, Staged, discard, safe_path, same_bytes, unlink_quietly, write_temp


def make_folder(folder: Path) -> None:
    """Make the folder (and its parents) if it is not there; PublishError naming it if that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {exc.filename or folder}: {exc.strerror or exc}") from None


def write_atomic(folder: Path, name: str, data: bytes, durable: bool = False) -> bool:
    """Publish data as folder/name; returns False (and writes nothing) when unchanged."""
    return bool(write_many(folder, {name: data}, durable))


def write_many(folder: Path, files: dict[str, bytes | Staged], durable: bool = False) -> list[str]:
    """Publish several files together; returns the names whose bytes changed. With `durable`,
    each is on disk (fsynced) before it replaces the old one.

    All temporary files are written first, so a full disk fails before any file is
    replaced and the previous set stays whole. A Staged file's temporary file is there already.
    """
    staged: list[tuple[Path, Path]] = []
    target = folder
    try:
        for name, data in files.items():
            target = safe_path(folder, name)
            if isinstance(data, Staged):
                if data.temp is not None:
                    if not TEMP_RE.match(data.temp):
                        raise PublishError(f"refusing to publish {data.temp!r}: not a temporary file plotboard writes")
                    staged.append((safe_path(folder, data.temp), target))
            elif not same_bytes(target, data):
                staged.append((write_temp(folder, name, data, durable), target))
        for temp, target in staged:
            os.replace(temp, target)  # replaces a symlink itself, never what it points to
    except (OSError, PublishError) as exc:
        for temp, _ in staged:
            unlink_quietly(temp)
        discard(folder, files)
        if isinstance(exc, PublishError):
            raise
        raise PublishError(f"cannot write {target}: {exc.strerror or exc}") from None
    return [target.name for _, target in staged]


LEFTOVER_AFTER = 600.0  # seconds: a temporary file this old is a leftover (a staged render never published)


def remove_leftovers(folder: Path, names: Iterable[str]) -> list[str]:
    """Delete the temporary files among `names` (a listing of `folder`) older than LEFTOVER_AFTER:
    files a render process staged for a render that was then dropped or lost. Their mtimes
    are the file system's, so they are compared with the time of day, not a clock passed in."""
    removed, now = [], time.time()
    for name in names:
        if TEMP_RE.match(name):
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > LEFTOVER_AFTER:
                    os.unlink(path)
                    removed.append(name)
            except OSError:
                pass
    return removed


def remove_temp_files(folder: Path) -> list[str]:
    """Delete hidden temporary files a killed writer left behind; returns their names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if TEMP_RE.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except FileNotFoundError:
                pass
    return removed


def remove_files(folder: Path, names: list[str]) -> None:
    """Delete files plotboard published (callers pass only names it wrote)."""
    for name in names:
        try:
            os.unlink(safe_path(folder, name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PublishError(f"cannot delete {folder / name}: {exc.strerror}") from None
