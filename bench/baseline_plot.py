"""Baseline (b): the plot script `watchmedo shell-command` runs on every change of the data folder.

`watchmedo shell-command --patterns='**/*.csv' --command='python bench/baseline_plot.py
"${watch_src_path}" "${watch_dest_path}" OUT_DIR' DATA_DIR`: renders the one chart whose CSV
changed (the destination of a move, else the changed file) with pyplot, savefig to the final path.
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
    src, dest, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    csv = Path(dest or src)
    if csv.suffix != ".csv" or not csv.is_file():
        return
    fig = plt.figure(figsize=reference.SIZE, dpi=reference.DPI)
    reference.reference(fig, [csv])
    fig.savefig(out / f"{csv.stem}.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
