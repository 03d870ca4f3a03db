"""The folders `build` and `run` write: made (or checked) before anything is written, so a
folder that cannot be used stops the command with one line saying which and why."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from renderer.board.model import Board
from renderer.errors import PlotboardError


class FolderError(PlotboardError):
    """The output or bookkeeping folder cannot be made or written."""

    exit_code = 1


def ensure_folders(board: Board) -> None:
    """Make the bookkeeping and output folders; raises FolderError naming what is wrong."""
    folders = ((board.state_dir, "its bookkeeping", "state"), (board.output, "the pages and images", "output"))
    for folder, what, key in folders:  # all checked before any is made
        if _what_is(board, folder, what, key) not in ("missing", "folder"):
            raise FolderError(f"{board.path}: {folder} exists and is not a folder; plotboard keeps {what} there: "
                              f"move it away, or set [board] {key} = \"/another/folder\" in {board.path.name}")
    static = board.output / "static"
    if _what_is(board, static, "the page's CSS and JS", "output", follow=False) == "other":  # a link is replaced
        raise FolderError(f"{board.path}: {static} exists and is not a folder; plotboard writes the page's "
                          "CSS and JS there: move it away")
    for folder, what, key in folders:
        _ensure(board, folder, what, key, writable=folder == board.state_dir)


def _what_is(board: Board, folder: Path, what: str, key: str, follow: bool = True) -> str:
    """"missing", "folder" (with `follow`, a link to one counts), "link" (to nothing, to a loop;
    without `follow`, any) or "other"; FolderError when the path cannot even be looked at (no
    permission, a name too long)."""
    try:
        st = os.stat(folder, follow_symlinks=follow)
    except (FileNotFoundError, NotADirectoryError):
        return "link" if os.path.islink(folder) else "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "link"
        raise FolderError(f"{board.path}: cannot use {folder} ({exc.strerror or exc}), where plotboard keeps "
                          f"{what}: set [board] {key} = \"/a/writable/folder\" in {board.path.name}") from None
    return "folder" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "other"


def _ensure(board: Board, folder: Path, what: str, key: str, writable: bool) -> None:
    """Make folder; with `writable`, also insist that it can be written now. (An output folder
    that cannot be written is left to the publisher: each chart then fails naming its file.)"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderError(f"{board.path}: cannot create {folder} ({exc.strerror or exc}), where plotboard keeps "
                          f"{what}: set [board] {key} = \"/a/writable/folder\" in {board.path.name}") from None
    if writable and not os.access(folder, os.W_OK | os.X_OK):
        raise FolderError(f"{board.path}: {folder} is not writable, and plotboard keeps {what} there: "
                          f"set [board] {key} = \"/a/writable/folder\" in {board.path.name}")
