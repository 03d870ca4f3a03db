"""What a reload of the board file changes: pure comparisons of the old board and the new."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from renderer.board.model import Board

from renderer.board.config import with_exclusions

log = logging.getLogger("plotboard")

POOL_KEYS = ("workers", "render_timeout", "executor", "scheduler")  # a change needs a new executor
RENDER_KEYS = ("theme",)  # board settings that reach every render (renderer.store.workspace.make_job)


@dataclass
class BoardChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """'1 added, 0 removed, 2 changed' and one line per chart."""
        lines = "".join(f"\n  {sign}{n}" for sign, names in (("+", self.added), ("-", self.removed),
                                                              ("~", self.changed)) for n in names)
        return f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed{lines}"


def keep_output(old: Board, new: Board) -> Board:
    """The new board with the old output folder: a new one takes effect at the next start."""
    if new.output == old.output:
        return new
    log.warning("reload: a new output folder (%s) takes effect at the next start", new.output)
    return with_exclusions(dataclasses.replace(new, output=old.output))


def needs_new_executor(old: Board, new: Board) -> bool:
    return any(getattr(new, k) != getattr(old, k) for k in POOL_KEYS)


def compare(old: Board, new: Board) -> BoardChange:
    """Charts added, removed and changed (any setting of theirs, or a board setting that
    reaches every render) from `old` to `new`, in board order."""
    before = {c.name: c for c in old.charts}
    names = {c.name for c in new.charts}
    every = any(getattr(old, k) != getattr(new, k) for k in RENDER_KEYS)
    change = BoardChange(removed=[n for n in before if n not in names])
    for chart in new.charts:
        if chart.name not in before:
            change.added.append(chart.name)
        elif every or before[chart.name] != chart:
            change.changed.append(chart.name)
    return change
