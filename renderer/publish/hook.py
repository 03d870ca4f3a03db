"""What the daemon's loop calls to publish (renderer.daemon.loop): a few calls, and nothing at
all for a board without `[publish]`."""

from __future__ import annotations

import logging
from typing import Any, Callable

from renderer.board.model import Board
from renderer.publish.client import require_publisher  # noqa: F401 - re-exported for the loop
from renderer.threads import Died

log = logging.getLogger("plotboard")


class NoPublishing:
    """A board without [publish]: every call does nothing."""

    def __enter__(self) -> "NoPublishing":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def before_pages(self, pages: Any) -> None:
        """The pages (renderer.pages.model.Pages) are about to be written."""

    def wrote_pages(self) -> None:
        """The pages were written (after the images they name)."""

    def pending(self) -> int:
        """Files waiting to be sent (`plotboard_publish_pending_files`); safe from any thread."""
        return 0

    def turn(self, batch: Any, now: float) -> None:
        """Each turn of the loop: images published since the pages were written are sent
        (they need not wait for the pages); when the publish state changed, the pages must say so."""


class Publishing(NoPublishing):
    def __init__(self, board: Board, wake: Callable[[], None], died: Died | None) -> None:
        from renderer.publish.publisher import Publisher

        self.spec = board.publish
        self.publisher = Publisher(board, wake, died)

    def __enter__(self) -> "Publishing":
        self.publisher.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.publisher.stop()

    def before_pages(self, pages: Any) -> None:
        pages.publish = self.publisher.summary()

    def wrote_pages(self) -> None:
        self.publisher.touched()

    def pending(self) -> int:
        return self.publisher.summary()["pending"]

    def turn(self, batch: Any, now: float) -> None:
        if batch.due is not None:  # something was published that the pages do not show yet
            self.publisher.touched()
        if self.publisher.changed():
            batch.dirty(now)


def publishing(board: Board, wake: Callable[[], None], died: Died | None = None) -> NoPublishing:
    return Publishing(board, wake, died) if board.publish is not None else NoPublishing()
