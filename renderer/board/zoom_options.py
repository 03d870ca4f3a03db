"""Zoom on demand's options (DESIGN.md "Zoom on demand and image history"): a chart's `zoom`
(which needs `windows`) and `[board] zoom_cache`, the size of the disk cache of on-demand
images (renderer.daemon.zoom_cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from renderer.board.durations import parse_size
from renderer.board.kinds import Flag, Option
from renderer.text import format_size

LEAST_CACHE = 1024 * 1024  # bytes: a cache smaller than one MiB would hold hardly one image


class CacheSize(Option):
    """A size in bytes ('256MiB', '1GiB') of a cache on disk, at least one MiB."""

    type_text = f"size ≥ {format_size(LEAST_CACHE)}"

    def check(self, value: Any, root: Path) -> int:
        size = parse_size(value)
        if size < LEAST_CACHE:
            raise ValueError(f"expected at least {format_size(LEAST_CACHE)}, got {value!r}")
        return size


class Zoom(Flag):
    """`zoom = true`: the chart can be drawn for any window ending at any time, on demand."""


def zoom_problem(chart: dict) -> str | None:
    """Why a chart's `zoom` cannot be (`chart`: its checked values), or None."""
    if chart.get("zoom") and not chart.get("windows"):
        return ("needs `windows` (e.g. windows = [\"1h\", \"1d\"]): a zoomable chart is drawn for a "
                "window the viewer picks, so its plot must take `window`")
    return None
