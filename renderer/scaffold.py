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


class InitError(PlotboardError):
    """`plotboard init` wrote nothing: DIR is not a folder, or a file it would write exists."""

    exit_code = 1


def board_files() -> dict[str, str]:
    """What `init` writes, by path relative to DIR; the board file last."""
    return {"charts.py": CHARTS, "data/temperature.csv": sample_csv(), "plotboard.toml": BOARD}


def write_board(folder: Path) -> Path:
    """Write plotboard.toml, charts.py and data/temperature.csv into folder; returns the board file.

    Never overwrites anything: if any of them (or a folder on their way) exists, nothing is
    written. A write that fails takes back what this call made.
    """
    files = board_files()
    for path in [folder, folder / "data"]:
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            raise InitError(f"{path} exists and is not a folder; plotboard init DIR writes a new board into "
                            "the folder DIR")
    existing = [folder / name for name in files if (folder / name).exists() or (folder / name).is_symlink()]
    if folder / "plotboard.toml" in existing:
        raise InitError(f"{folder / 'plotboard.toml'} already exists: there is a board there already; plotboard init "
                        "never overwrites anything: choose another folder")
    if existing:
        raise InitError(f"{existing[0]} already exists; plotboard init never overwrites anything: choose another "
                        "folder, or move it away")
    made: list[Path] = []  # what to take back if a write fails, newest first
    try:
        for path in reversed([folder, *folder.parents]):
            if not path.exists():
                path.mkdir()
                made.insert(0, path)
        if not (folder / "data").exists():
            (folder / "data").mkdir()
            made.insert(0, folder / "data")
        for name, text in files.items():
            with open(folder / name, "x", encoding="utf-8") as f:  # "x": never over an existing file
                made.insert(0, folder / name)
                f.write(text)
    except OSError as exc:
        for path in made:
            try:
                path.rmdir() if path.is_dir() else path.unlink()
            except OSError:
                pass
        where = exc.filename or folder
        raise InitError(f"cannot write {where} ({exc.strerror or exc}); nothing was written") from None
    return folder / "plotboard.toml"
