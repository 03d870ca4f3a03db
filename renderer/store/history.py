"""Image history (`history = N`): when a chart's image changes, the previous one is kept as
OUTPUT/history/NAME/STAMP.png (STAMP: its rendered_at, `20261206T121314.123Z`) and listed in
OUTPUT/history/NAME.json, newest first; the newest N are kept, older ones deleted.

The previous image is kept by a hard link, made before the new image replaces it: the old file
(the inode the web server was serving) simply gets a second name, so keeping it costs no copy
of its bytes and no time without an image (a rename of the old file would leave NAME.png
missing until the new one is moved in). The link is made under a hidden temporary name in
history/NAME/ and moved to STAMP.png with os.replace once the new image is in place, as every
output file is written; a render whose bytes did not change drops it. Where the file system
refuses hard links (EPERM, EMLINK, some network or FUSE file systems), the bytes are copied
instead. Only the 1x PNG of a chart's first window is kept (its later windows keep none).

What was kept is bookkeeping: each record holds its past images with their stamps
(renderer.store.records.ChartRecord.history), so only files plotboard wrote are ever deleted,
and a file that was deleted or altered is dropped from the list (never listed while missing)
by `check`: at every `build` (renderer.store.workspace.prepare) and, under `run`, when
`Watch` sees the chart's history folder or list change (renderer.daemon.repair_check).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat as stat_
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from renderer import jsonfile
from renderer.errors import PublishError
from renderer.readfile import read_file
from renderer.render.files import Staged, unlink_quietly, write_temp
from renderer.store.publish import remove_temp_files, write_atomic
from renderer.store.repair import stamp
from renderer.text import iso

if TYPE_CHECKING:
    from renderer.board.model import Board, Chart
    from renderer.store.records import ChartRecord

log = logging.getLogger("plotboard")

FOLDER = "history"  # OUTPUT/history/NAME/STAMP.png and OUTPUT/history/NAME.json


def stamp_name(rendered_at: float) -> str:
    """The file a past image is kept as: 20261206T121314.123Z.png."""
    return iso(rendered_at).replace("-", "").replace(":", "") + ".png"


def wanted(board: "Board", name: str) -> int:
    """How many past images the chart keeps (0 for a later window, or a chart no longer on the board)."""
    try:
        chart = board.chart(name)
    except KeyError:
        return 0
    return chart.history if chart.window_of is None else 0


@dataclass
class Held:
    """The previous image, linked (or copied) aside under a temporary name until the new one is in place."""

    temp: Path
    file: str  # STAMP.png
    rendered_at: float
    state: str


def hold(board: "Board", name: str, record: "ChartRecord", files: dict[str, bytes | Staged], now: float) -> Held | None:
    """Before a render's files replace the chart's: keep a second name for its current image
    (when it keeps history, has one that is as plotboard published it, and the render may change it)."""
    image = f"{name}.png"
    if not wanted(board, name) or record.rendered_at is None or image not in files:
        return None
    data = files[image]
    if isinstance(data, Staged) and data.temp is None:
        return None  # the render's bytes are the image's own
    source = board.output / image
    now_stamp = stamp(source)
    if now_stamp is None or now_stamp != record.stamps.get(image):
        return None  # missing, or not as plotboard wrote it: not the image of that moment
    chart = board.chart(name)
    state = "error" if record.error else (
        "stale" if chart.stale_after is not None and now - record.rendered_at > chart.stale_after else "ok")
    file = stamp_name(record.rendered_at)
    try:
        folder = _folder(board, name)
        temp = folder / f".{file}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(source, temp, follow_symlinks=False)
        except OSError:  # no hard links here: copy the bytes
            temp = write_temp(folder, file, read_file(source, now_stamp[0], follow_symlinks=False), False)
    except (OSError, PublishError) as exc:
        log.warning("%s: cannot keep the previous image in %s: %s", name, board.output / FOLDER,
                    getattr(exc, "strerror", None) or exc)
        return None
    return Held(temp, file, record.rendered_at, state)


def settle(board: "Board", name: str, record: "ChartRecord", held: Held | None, changed: list[str]) -> None:
    """After a render was published (`changed`: the files whose bytes changed; [] when it
    failed): the held image becomes a past image if the chart's image did change, else it is
    dropped; the oldest beyond the chart's `history` go; history/NAME.json is written."""
    keep = wanted(board, name)
    try:
        if held is not None:
            if f"{name}.png" in changed:
                target = held.temp.parent / held.file
                os.replace(held.temp, target)
                kept = stamp(target)
                if kept is not None:
                    record.history = [[held.file, held.rendered_at, held.state, *kept]] + [
                        e for e in record.history if e[0] != held.file]
            else:
                unlink_quietly(held.temp)
        if keep and (held is not None or record.history_list is None or len(record.history) > keep):
            _prune(board, name, record, keep)
            _write_list(board, name, record)
    except (OSError, PublishError) as exc:
        if held is not None:
            unlink_quietly(held.temp)
        log.warning("%s: cannot update its history in %s: %s", name, board.output / FOLDER,
                    getattr(exc, "strerror", None) or exc)


def check(board: "Board", name: str, record: "ChartRecord", thorough: bool = True) -> bool:
    """Make the chart's history agree with the board and the output folder: past images that
    are missing (or, `thorough`, altered) are dropped from the list, never listed while missing;
    those beyond its `history` are deleted; history/NAME.json is written again when it is not as
    last written; a chart that keeps none loses its history. Returns whether the record changed.
    Not `thorough` (the daemon's frequent look) costs one listing of history/NAME/, not a stat a file."""
    keep = wanted(board, name)
    if not keep and not record.history and record.history_list is None:
        return False
    before = ([list(e) for e in record.history], record.history_list)
    folder = board.output / FOLDER / name
    real = os.path.isdir(folder) and not os.path.islink(folder)
    if real and thorough:
        remove_temp_files(folder)  # a writer killed between a link and its rename
    try:
        listing = set(os.listdir(folder)) if real and not thorough else set()
    except OSError:
        listing = set()
    present, seen = [], set()
    for entry in record.history:
        if entry[0] in seen:
            continue
        if (stamp(folder / entry[0]) != entry[3:]) if thorough else (entry[0] not in listing):
            log.warning("%s: past image %s is missing or was altered; dropped from %s/%s.json",
                        name, entry[0], FOLDER, name)
            continue
        seen.add(entry[0])
        present.append(entry)
    dropped = len(present) != len(record.history)
    record.history = present
    try:
        _prune(board, name, record, keep)
        if not keep:
            forget(board, name, record)
        elif dropped or len(before[0]) > keep or stamp(board.output / FOLDER / f"{name}.json") != record.history_list:
            _write_list(board, name, record)
    except (OSError, PublishError) as exc:
        log.warning("%s: cannot update its history in %s: %s", name, board.output / FOLDER,
                    getattr(exc, "strerror", None) or exc)
    return (record.history, record.history_list) != before


def check_all(board: "Board", records: dict[str, "ChartRecord"]) -> list[str]:
    """`check` every chart's history; the names of the records that changed."""
    return [name for name, record in records.items() if check(board, name, record)]


def forget(board: "Board", name: str, record: "ChartRecord") -> None:
    """Delete the chart's history (a chart removed, or `history` set to 0): only the files
    plotboard wrote, then its folder if that left it empty."""
    folder = board.output / FOLDER / name
    for entry in record.history:
        _delete(folder / entry[0], entry[3:])
    record.history = []
    if record.history_list is not None:
        unlink_quietly(board.output / FOLDER / f"{name}.json")
        record.history_list = None
    for empty in (folder, folder.parent):
        try:
            os.rmdir(empty)
        except OSError:
            pass  # not empty (a file plotboard did not write), or not there


def _prune(board: "Board", name: str, record: "ChartRecord", keep: int) -> None:
    folder = board.output / FOLDER / name
    for entry in record.history[keep:]:
        _delete(folder / entry[0], entry[3:])
    del record.history[keep:]


def _delete(path: Path, recorded: list[int]) -> None:
    """Delete a past image plotboard kept, unless it is no longer that file (altered since)."""
    if stamp(path) == recorded:
        unlink_quietly(path)


def _write_list(board: "Board", name: str, record: "ChartRecord") -> None:
    entries = [{"image": f"{FOLDER}/{name}/{e[0]}", "rendered_at": iso(e[1]), "state": e[2]} for e in record.history]
    folder = _folder(board)
    write_atomic(folder, f"{name}.json", jsonfile.compact(entries).encode())
    record.history_list = stamp(folder / f"{name}.json")


def _folder(board: "Board", name: str | None = None) -> Path:
    """OUTPUT/history (or OUTPUT/history/NAME) made a real folder: a planted symlink is
    replaced, never written through."""
    folder = board.output / FOLDER
    for path in [folder] + ([folder / name] if name else []):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat_.S_ISDIR(st.st_mode):
            if not stat_.S_ISLNK(st.st_mode):
                raise PublishError(f"{path} is not a folder")
            os.unlink(path)
            st = None
        if st is None:
            os.mkdir(path)
    return folder if name is None else folder / name


class Watch:
    """Under `run`: notices a chart's history folder or list changing (one stat of each per
    chart that keeps history, each check) and then `check`s that chart."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple] = {}

    def check(self, board: "Board", records: dict[str, "ChartRecord"]) -> list[str]:
        """The names of the records that changed."""
        changed = []
        for name, record in records.items():
            keep = wanted(board, name)
            if not keep and not record.history and record.history_list is None:
                self.seen.pop(name, None)
                continue
            look = self._look(board, name)
            if self.seen.get(name) == look and len(record.history) <= keep:
                continue
            if check(board, name, record, thorough=False):
                changed.append(name)
            # The folder as it was before the check (a prune of our own costs one more look) and
            # the list as written: a look after the check could take in someone's deletion made
            # meanwhile and never see it again.
            self.seen[name] = (look[0], record.history_list)
        return changed

    @staticmethod
    def _look(board: "Board", name: str) -> tuple:
        try:
            st = os.stat(board.output / FOLDER / name)
            folder = (st.st_ino, st.st_mtime_ns)
        except OSError:
            folder = None
        return folder, stamp(board.output / FOLDER / f"{name}.json")
