"""`plotboard init DIR`: a small board that builds as it is, to start from."""

from __future__ import annotations

import math
from pathlib import Path

from renderer.errors import PlotboardError

BOARD = '''\
[board]
title = "My board"
output = "public"
refresh = "10s"

[defaults]
size = [8, 4]
dpi = 100

[[charts]]
name = "temperature"
title = "Temperature"
description = "Readings from data/temperature.csv"
plot = "charts:temperature"
inputs = ["data/temperature.csv"]
'''

CHARTS = '''\
"""Plot functions: each draws on the Figure it is given; plotboard saves it."""

import csv


def temperature(fig, inputs, **params):
    hours, values = [], []
    for path in inputs:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                hours.append(float(row["hour"]))
                values.append(float(row["celsius"]))
    ax = fig.add_subplot()
    ax.plot(hours, values, color=params.get("color", "tab:red"))
    ax.set_xlabel("hour")
    ax.set_ylabel("°C")
    ax.grid(alpha=0.3)
'''


def sample_csv() -> str:
    rows = ["hour,celsius"]
    for hour in range(48):
        rows.append(f"{hour},{12 + 6 * math.sin((hour - 9) / 24 * 2 * math.pi):.2f}")
    return "\n".join(rows) + "\n"


def write_board(folder: Path) -> Path:
    """Write plotboard.toml, charts.py and data/temperature.csv into folder; returns the board file."""
    board_file = folder / "plotboard.toml"
    existing = [p for p in (board_file, folder / "charts.py") if p.exists()]
    if existing:
        raise PlotboardError(f"{existing[0]} already exists; not overwriting it")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "charts.py").write_text(CHARTS)
    (folder / "data" / "temperature.csv").write_text(sample_csv())
    board_file.write_text(BOARD)
    return board_file
