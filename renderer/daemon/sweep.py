"""The periodic check that catches what no file event reported: a slice of the charts every few
seconds, each chart once every `check_every`. Times are passed in."""

from __future__ import annotations

import logging

from renderer.board.model import Board
from renderer.board.inputs import is_pattern
from renderer.board.triggers import Trigger
from renderer.daemon.schedule import IDLE, Scheduler
from renderer.daemon.upkeep import check, files_seen
from renderer.store.fingerprints import racy
from renderer.store.records import ChartRecord
from renderer.store.workspace import needs_repair

log = logging.getLogger("plotboard")


class Sweep:
    """The periodic check that catches changes no event reported (a lost inotify event, a
    folder reached through a symlink, a file changed over NFS) and published files altered in
    place: called every `interval` seconds, it checks a slice of the charts, so that every
    chart is checked once every `board.check_every` seconds and the cost is spread evenly
    instead of stalling the loop. A chart whose files look as they did at its last check
    (sizes and mtimes, one stat each) and that has no pattern among its inputs costs no
    fingerprint."""

    def __init__(self) -> None:
        self.position = 0
        self.credit = 0.0
        self.looked: dict[str, tuple] = {}  # chart -> what files_seen saw at its last full check or render
        self.board: Board | None = None  # the board `looked` was last pruned for

    def rendered(self, name: str, files: tuple | None) -> None:
        """A render of the chart succeeded, started when its files looked like `files`."""
        if files is not None:
            self.looked[name] = files

    def step(self, board: Board, records: dict[str, ChartRecord], scheduler: Scheduler, interval: float,
             now: float = 0.0) -> int:
        """Check the next slice; returns how many charts it found changed."""
        charts = board.charts
        if board is not self.board:  # a reload or a family's expansion: forget the charts that left
            self.board = board
            names = {c.name for c in charts}
            self.looked = {name: files for name, files in self.looked.items() if name in names}
        if not charts:
            return 0
        self.credit = min(self.credit + len(charts) * interval / max(board.check_every, interval), len(charts))
        count, changed = int(self.credit), 0
        self.credit -= count
        seen: dict[str, tuple[int, int] | None] = {}
        for i in range(count):
            chart = charts[(self.position + i) % len(charts)]
            timer = scheduler[chart.name]
            if timer.state == IDLE and not timer.failures and (bad := needs_repair(board, records.get(chart.name))):
                log.warning("%s: %s altered; rendering it again", chart.name, ", ".join(bad))
                timer.request(now, Trigger.REPAIR)
                continue
            if timer.held(now) or timer.state != IDLE:
                continue  # a later time window inside its interval waits anyway; a queued or running render looks again
            files = files_seen(chart, seen)
            if (self.looked.get(chart.name) == files and not any(is_pattern(p) for p in chart.inputs)
                    and not racy(records.get(chart.name))):  # a racy input's bytes may have changed
                continue
            self.looked[chart.name] = files
            if check(board, records, scheduler, chart):
                log.info("%s: a change no file event reported; rendering it", chart.name)
                changed += 1
        self.position = (self.position + count) % len(charts)
        return changed
