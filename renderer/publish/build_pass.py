"""`plotboard build`'s publishing: once its pages are written, the store is brought in line with
the output folder (a reconciling pass: the prefix listed and compared), and status.json's
`publish` says how that went (as of before its own upload, as in the daemon)."""

from __future__ import annotations

import logging
from typing import Any

from renderer import jsonfile
from renderer.board.model import Board
from renderer.errors import PlotboardError
from renderer.pages.status import STATUS_FILE
from renderer.publish.client import StoreError
from renderer.publish.mirror import Mirror
from renderer.readfile import BOOKKEEPING_LIMIT, read_file
from renderer.store.records import ChartRecord

log = logging.getLogger("plotboard")

PASSES = 4  # a build's passes at most: a pass that leaves work for later is followed by another


def publish_build(board: Board, records: dict[str, ChartRecord], state: bytes | None = None) -> str | None:
    """Mirror the output folder to the board's store; returns the error (one line), or None."""
    if board.publish is None:
        return None
    mirror = Mirror(board.output, board.state_dir, board.publish)
    try:
        last = (mirror.state.get("state", "ok"), mirror.state.get("error"))
        _show(board, records, state, mirror, *last)
        error = _passes(mirror)
        if (("error" if error else "ok"), error) != last:
            mirror.state = {"state": "error" if error else "ok", "error": error}
            mirror.save()
            _show(board, records, state, mirror, "error" if error else "ok", error)
            if error is None:
                error = _passes(mirror)  # the manifest that says so
        if error:
            log.error("publish to %s failed: %s", board.publish.url, error)
        return error
    finally:
        mirror.close()


def _passes(mirror: Mirror) -> str | None:
    try:
        for i in range(PASSES):
            if not mirror.run(reconcile=i == 0).again:
                return None
        return None
    except StoreError as exc:
        mirror.count_pending()
        return str(exc)


def _show(board: Board, records: dict[str, ChartRecord], state: bytes | None, mirror: Mirror, now_state: str,
          error: str | None) -> None:
    """Have status.json say this of publishing, unless it says so already."""
    from renderer.pages.model import Pages
    from renderer.pages.write import write_pages

    summary = {"url": board.publish.url, "state": now_state, "error": error, "pending": mirror.pending}
    if _shown(board) == summary:
        return
    pages = Pages()
    pages.publish = summary
    try:
        write_pages(board, records, pages=pages, state=state)
    except PlotboardError as exc:
        log.error("%s", exc)


def _shown(board: Board) -> Any:
    try:
        return jsonfile.loads(read_file(board.output / STATUS_FILE, BOOKKEEPING_LIMIT)).get("publish")
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
