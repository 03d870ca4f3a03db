"""Where a chart's first axes sits in its image, and the x range it shows: recorded with each render
so the page can turn a drag across the image into a time range (README.md "Zoom").

Read from the figure savefig has just drawn (positions are fractions of the figure, the same at
any dpi): no second draw, a few microseconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure

DAY = 86400.0


def axes_of(fig: Figure) -> dict[str, Any] | None:
    """`{"box": [left, top, right, bottom], "x": [from, to] | None}` of the figure's first axes, or None
    without axes.

    box: fractions of the image, origin top-left (as a browser places pixels). x: the x axis's
    limits in epoch seconds, left edge first, when the axis holds dates (matplotlib's date units,
    days since its epoch) on a linear scale; None otherwise (numbers, categories, a log scale), and
    the page then offers no drag.
    """
    if not fig.axes:
        return None
    ax = fig.axes[0]
    pos = ax.get_position()
    box = [pos.x0, 1.0 - pos.y1, pos.x1, 1.0 - pos.y0]
    if not all(math.isfinite(v) for v in box):
        return None
    return {"box": [round(float(v), 5) for v in box], "x": _date_range(ax)}


def _date_range(ax: Any) -> list[float] | None:
    axis = ax.xaxis
    converter = axis.get_converter() if hasattr(axis, "get_converter") else getattr(axis, "converter", None)
    dated = type(converter).__module__ == mdates.__name__ or isinstance(
        axis.get_major_formatter(), (mdates.DateFormatter, mdates.AutoDateFormatter, mdates.ConciseDateFormatter))
    if not dated or ax.get_xscale() != "linear":
        return None
    zero = _unix_epoch(mdates.get_epoch())
    left, right = ax.get_xlim()
    seconds = [(float(v) - zero) * DAY for v in (left, right)]
    if not all(math.isfinite(v) and abs(v) < 1e11 for v in seconds):  # ~ year 5000: no time a page can show
        return None
    return [round(v, 3) for v in seconds]


@functools.lru_cache(maxsize=4)
def _unix_epoch(epoch: str) -> float:
    """1970-01-01 in matplotlib's date units, for its date epoch (rcParams["date.epoch"] may move it)."""
    return float(mdates.date2num(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)))
