"""Baseline (a): the cron-style script a user writes without plotboard.

Renders every chart of a data folder one after another with pyplot and savefig straight to
the final path: `python bench/baseline_cron.py DATA_DIR OUT_DIR` (one PNG per DATA_DIR/*.csv).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import reference  # noqa: E402


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for csv in sorted(data.glob("*.csv")):
        fig = plt.figure(figsize=reference.SIZE, dpi=reference.DPI)
        reference.reference(fig, [csv])
        fig.savefig(out / f"{csv.stem}.png")
        plt.close(fig)


if __name__ == "__main__":
    main()
