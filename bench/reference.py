"""The reference chart for every benchmark: a 10,000-point line from a CSV, 800x400 px at 100 dpi.

The plot function follows plotboard's plot contract (it only draws on the Figure it is given,
no pyplot), so the same function serves plotboard, the bare-Figure figures and the baselines.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

POINTS = 10_000
SIZE = (8.0, 4.0)  # inches
DPI = 100


def make_series(seed: int, points: int = POINTS) -> np.ndarray:
    """Return a reproducible random walk of `points` values for `seed`."""
    rng = np.random.default_rng(seed)
    return 50.0 + np.cumsum(rng.normal(0.0, 1.0, points))


def csv_text(seed: int, points: int = POINTS) -> str:
    """Return the reference CSV (header `t,value`) for `seed`."""
    values = make_series(seed, points)
    lines = ["t,value"]
    lines.extend(f"{i},{v:.4f}" for i, v in enumerate(values))
    return "\n".join(lines) + "\n"


def write_csv(path: os.PathLike[str] | str, seed: int, points: int = POINTS) -> None:
    """Write the reference CSV to `path` in place (an ordinary, non-atomic save)."""
    with open(path, "w") as f:
        f.write(csv_text(seed, points))


def write_csv_atomic(path: os.PathLike[str] | str, seed: int, points: int = POINTS) -> None:
    """Write the reference CSV the careful way: hidden temp file in the same folder, then rename."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(csv_text(seed, points))
    os.replace(tmp, path)


def load(path: os.PathLike[str] | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a reference CSV into (t, value) arrays."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, 0], data[:, 1]


def reference(fig: Any, inputs: list[pathlib.Path], **params: Any) -> None:
    """Draw the reference chart: one line from the first input, with title and grid."""
    t, v = load(inputs[0])
    ax = fig.add_subplot()
    ax.plot(t, v, linewidth=0.8, color=params.get("color", "tab:blue"))
    ax.set_title(params.get("title", "Reference chart"))
    ax.set_xlabel("t")
    ax.set_ylabel("value")
    ax.grid(True)


def new_figure() -> Any:
    """Return a bare matplotlib Figure of the reference size (no pyplot)."""
    from matplotlib.figure import Figure

    return Figure(figsize=SIZE, dpi=DPI)
