"""Time windows at work: the limiter that keeps later windows from rendering more often than
their interval (in `build` and under `run`, times passed in), a chart's windows grouped back
together for status.json and the page, and the check for a plot that ignores `window`.

Each window is an internal chart of its own (renderer.board.families.windowed) with its own record and,
under `run`, its own timer; only the page and status.json see them as one chart.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from renderer.board.triggers import LIMITED, Trigger

if TYPE_CHECKING:
    from renderer.board.model import Board, Chart

log = logging.getLogger("plotboard")

WORST = ("error", "stale", "pending", "ok")  # a chart's state is the first of these any window is in
IGNORED = ("the plot ignores `window`: every window's image is identical "
           "(use renderer.helpers.last(rows, window) or slice its data to the last `window` seconds)")


def held_until(chart: "Chart", rendered_at: float | None) -> float | None:
    """Until when a later window's render waits for a change or its schedule (None: no wait).

    The first window follows the chart's triggers; a later window renders at most once per
    interval (window ÷ 288, or the table form's) after its last good render.
    """
    if chart.window_of is None or chart.window is None or rendered_at is None:
        return None
    return rendered_at + chart.window.interval


def limited(chart: "Chart", rendered_at: float | None, reason: Trigger | None, now: float) -> bool:
    """Whether a render for `reason` must wait: a later window inside its interval (`rendered_at`:
    its last good render)."""
    until = held_until(chart, rendered_at)
    return reason in LIMITED and until is not None and now < until


def worst(states: list[str]) -> str:
    return next((s for s in WORST if s in states), "ok")


def ignores_window(board: "Board", hash_of: Callable[[str], str | None], name: str) -> bool:
    """Whether every window of the chart (of which `name` may be any window) rendered the very
    same image (`hash_of`: a chart's last image's hash, or None): a plot that does not look at
    `window`."""
    try:
        chart = board.chart(name)
    except KeyError:
        return False
    entries = board.windows_of(chart.window_of or chart.name)
    hashes = [hash_of(c.name) for c in entries]
    return len(entries) > 1 and None not in hashes and len(set(hashes)) == 1


def report_ignored(board: "Board", hash_of: Callable[[str], str | None], name: str, before: bool) -> None:
    """Log once, when a render makes every window's image identical (`before`: whether they were)."""
    if not before and ignores_window(board, hash_of, name):
        chart = board.chart(name)
        log.warning("%s: %s", chart.window_of or chart.name, IGNORED)
