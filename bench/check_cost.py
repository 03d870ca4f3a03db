"""The daemon's periodic check (renderer.daemon.sweep.Sweep) on a 10,000-chart board: its CPU cost.

Writes a board of N charts (each reading its own data file; half a plain path, half a glob over a
folder of its own; one shared plot module that imports a helper), records every chart as rendered with its
current fingerprint, then times, in CPU seconds of this process: one full check of every chart
(what an inotify overflow's rescan costs) and the slice the daemon checks every 5 s with the
default check_every of 1 minute. Run: python bench/check_cost.py [N] (default 10000).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from renderer.store import module_use  # noqa: E402

from renderer.daemon import upkeep
from renderer.daemon.sweep import Sweep
from renderer.board.config import load_board  # noqa: E402
from renderer.daemon.schedule import Scheduler  # noqa: E402
from renderer.store.records import ChartRecord
from renderer.store.fingerprints import expand_inputs, file_digest, fingerprint  # noqa: E402

REPLAN_EVERY = 5.0  # renderer.daemon.loop's


def make_board(folder: Path, n: int) -> Path:
    (folder / "data").mkdir()
    (folder / "plots.py").write_text("from helpers import style\ndef line(fig, inputs, **params):\n    pass\n")
    (folder / "helpers.py").write_text("def style():\n    return {}\n")
    charts = []
    for i in range(n):
        if i % 2:  # a glob over a folder of its own (a host's or a disk's files)
            (folder / "data" / f"c{i}").mkdir()
            (folder / "data" / f"c{i}" / "load.txt").write_text(f"{i}\n")
            inputs = f"data/c{i}/*.txt"
        else:
            (folder / "data" / f"c{i}.txt").write_text(f"{i}\n")
            inputs = f"data/c{i}.txt"
        charts.append(f'[[charts]]\nname = "c{i}"\nplot = "plots:line"\ninputs = ["{inputs}"]\n')
    board_file = folder / "plotboard.toml"
    board_file.write_text('[board]\noutput = "public"\n\n' + "\n".join(charts))
    return board_file


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        board = load_board(make_board(Path(tmp), n))
        root = str(board.root)
        used = {str(board.root / name): file_digest(board.root / name) for name in ("plots.py", "helpers.py")}
        scheduler = Scheduler()
        records = {}
        for chart in board.charts:
            module_use.remember(root, chart.name, used)
            records[chart.name] = ChartRecord(fingerprint=fingerprint(board, chart, expand_inputs(chart)),
                                              rendered_at=time.time())
            scheduler.add(chart.name)
        full = []
        for _ in range(5):
            started = time.process_time()
            upkeep.rescan(board, records, scheduler)
            full.append(time.process_time() - started)
        assert not scheduler.ready(), "nothing changed, yet the check found changes"
        sweep, cycles = Sweep(), []
        for _ in range(2):  # the first cycle fingerprints every chart; later ones, what looks changed
            steps = []
            for _ in range(round(board.check_every / REPLAN_EVERY)):  # one whole cycle
                started = time.process_time()
                sweep.step(board, records, scheduler, REPLAN_EVERY)
                steps.append(time.process_time() - started)
            cycles.append(steps)
        full_s = statistics.median(full)
        print(f"charts: {n}; check_every: {board.check_every:g} s")
        print(f"full check of every chart: {full_s * 1000:.0f} ms CPU ({full_s / n * 1e6:.1f} us a chart)")
        for which, steps in zip(("first cycle", "later cycles"), cycles):
            print(f"{which}: one 5-s slice {statistics.median(steps) * 1000:.0f} ms CPU (max {max(steps) * 1000:.0f} ms);"
                  f" the periodic check {sum(steps) / board.check_every * 100:.2f}% of one core")


if __name__ == "__main__":
    main()
