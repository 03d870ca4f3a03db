"""The check that renders again the charts whose published files were deleted (or the whole
output folder), from the output folder's listing. Times are passed in."""

from __future__ import annotations

import logging
import os
from typing import Callable

from renderer.board.model import Board
from renderer.board.triggers import Trigger
from renderer.daemon.schedule import IDLE, Scheduler
from renderer.store import history
from renderer.store.publish import remove_leftovers
from renderer.store.records import ChartRecord

log = logging.getLogger("plotboard")


class Repair:
    """Render again the charts whose published files are missing (unless they are failing:
    their backoff rules), looking at the output folder's listing only when the folder itself
    changed (its inode or mtime): a board at rest costs one stat. Files altered in place are
    the Sweep's. Past images (renderer.store.history) deleted or altered are dropped from their
    chart's list; `on_change(name)` is told of each record that changed so."""

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self.folder_stamp: tuple[int, int] | None = None
        self.listing_failed = False  # logged once until a listing succeeds
        self.history = history.Watch()
        self.on_change = on_change

    def check(self, board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, now: float) -> None:
        for name in self.history.check(board, records):
            if self.on_change is not None:
                self.on_change(name)
        try:
            st = os.stat(board.output)
            stamp = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self.folder_stamp:
            return
        try:
            present = set(os.listdir(board.output))
        except (FileNotFoundError, NotADirectoryError):
            present = set()  # the folder is gone: everything in it is missing
        except OSError as exc:
            # Out of descriptors, EIO, a permission changed: the listing says nothing about
            # what is there. Nothing is rendered again; the next check tries again.
            if not self.listing_failed:
                log.warning("%s: cannot list the output folder (%s); will try again",
                            board.output, exc.strerror or exc)
            self.listing_failed = True
            return
        self.listing_failed = False
        self.folder_stamp = stamp
        for name in remove_leftovers(board.output, present):
            log.info("removed leftover temporary file %s", board.output / name)
        # The output folder changes with every publish: while renders go on, this runs every
        # REPLAN_EVERY seconds over the whole board, so the common case stays one set operation a chart.
        for name, rec in records.items():
            if rec.rendered_at is None or present.issuperset(rec.files) or name not in scheduler:
                continue
            timer = scheduler[name]
            if timer.state != IDLE or timer.failures:
                continue
            missing = [f for f in rec.files if f not in present]
            log.warning("%s: %s missing; rendering it again", name, ", ".join(missing))
            timer.request(now, Trigger.REPAIR)
