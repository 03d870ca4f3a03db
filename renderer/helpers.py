"""Helpers for plot functions: honouring `window` (seconds) in one line.

    from renderer.helpers import last, read_csv

    def disk(fig, inputs, window=86400.0, **params):
        rows = last(read_csv(inputs[0]), window)          # rows of the last `window` seconds
        ...

Plain Python (no matplotlib, no numpy), so a plot module may import it anywhere.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

Row = TypeVar("Row")


def last(rows: Sequence[Row], window: float | None, time: str | int | Callable[[Row], float] | None = None,
         now: float | None = None) -> list[Row]:
    """The rows of the last `window` seconds: those whose time is at least `now` − window.

    `time` picks a row's time in epoch seconds (a key or index of the row, or a function); by
    default the "time" column of rows read by `read_csv` (dicts), or the first item of other
    rows. `now` defaults to the newest row's time, so a file that stopped growing still shows
    its last window. With `window` None (a chart without windows) every row is kept.
    """
    rows = list(rows)
    if window is None or not rows:
        return rows
    if time is None:
        time = "time" if isinstance(rows[0], Mapping) else 0
    at = time if callable(time) else (lambda row: row[time])  # type: ignore[index]
    times = [float(at(row)) for row in rows]
    end = max(times) if now is None else now
    return [row for row, t in zip(rows, times) if t >= end - window]


def seconds(value: str) -> float:
    """A time as a CSV writes it: epoch seconds, or ISO 8601 ('2026-11-21T22:42:57Z')."""
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def read_csv(path: str | os.PathLike, time: str = "time") -> list[dict[str, Any]]:
    """A CSV file with a header as dicts, its `time` column in epoch seconds (numbers or ISO
    8601) and every other value a float where it reads as one."""
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == time:
                    row[key] = seconds(value)
                    continue
                try:
                    row[key] = float(value)
                except (TypeError, ValueError):
                    row[key] = value
            rows.append(row)
    return rows
