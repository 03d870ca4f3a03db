"""A render the daemon has submitted and not yet published."""

from __future__ import annotations

from dataclasses import dataclass

from renderer.board.config import Chart
from renderer.render.jobs import RenderFailure, RenderOutput


@dataclass(eq=False)
class Flight:
    """A render in flight; compared by identity, so a set can hold several of one chart."""

    chart: Chart
    current: str  # the fingerprint of what it renders
    trigger: str
    started: float
    executor: object
    dispatched_at: float = 0.0  # when its chart's timer started it (for an early render: later)
    discard: bool = False  # its chart was removed meanwhile, or (early) its inputs changed since
    early: bool = False  # started inside the chart's quiet window (renderer.daemon.early)
    outcome: RenderOutput | RenderFailure | None = None  # an early render's result, held
    files: tuple | None = None  # its files' sizes and mtimes when it started (renderer.daemon.upkeep.files_seen)
