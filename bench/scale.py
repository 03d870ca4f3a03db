"""How `build` and `run` grow with the size of the board: N tiny charts rendered from cold.

For each N (default 1,000 and 3,000; pass others as arguments, e.g. `python bench/scale.py 1000
3000 10000`), the same fresh board is rendered by `plotboard build` (wall time, and CPU seconds
of its main process and of all its children) and, in a copy, by `plotboard run` until every
chart is in status.json with a render (wall time; CPU seconds of the daemon's own process, the
loop's work besides the renders, and of its workers). The ratio run/build shows whether the
daemon is as cheap as a build; the figures per N show how each grows with the board.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
PLOT = "def tiny(fig, inputs, **params):\n    fig.add_subplot().plot([1, 3, 2])\n"


def env() -> dict[str, str]:
    """PLOTBOARD_SRC=DIR runs another source tree (an older commit) for a same-machine baseline."""
    return dict(os.environ, PYTHONPATH=os.environ.get("PLOTBOARD_SRC", str(REPO)), MPLBACKEND="Agg",
                PYTHONUNBUFFERED="1")


def make_board(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "plots.py").write_text(PLOT)
    lines = ['[board]\nworkers = 2\n[defaults]\nsize = [1, 0.5]\ndpi = 40\nhidpi = false\nplot = "plots:tiny"\n']
    lines += [f'[[charts]]\nname = "c{i}"\n' for i in range(n)]
    (folder / "plotboard.toml").write_text("".join(lines))
    return folder / "plotboard.toml"


def time_build(board: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "renderer", "build", "-c", str(board)], env=env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s_all": cpu}


def rendered(status: Path, n: int) -> bool:
    try:
        charts = json.loads(status.read_text())["charts"]
    except (OSError, ValueError, KeyError):
        return False
    return len(charts) == n and all(c.get("renders", 0) >= 1 for c in charts)


def time_run(board: Path, n: int) -> dict[str, float]:
    status = board.parent / "public" / "status.json"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    me = psutil.Process(proc.pid)
    try:
        while not rendered(status, n):
            if proc.poll() is not None:
                raise RuntimeError("the daemon exited")
            time.sleep(0.05)  # polling the result file, not synchronising a test
        wall = time.perf_counter() - t0
        own = me.cpu_times()
    finally:
        proc.terminate()
        proc.wait(60)
    return {"wall_s": wall, "cpu_s_daemon": own.user + own.system}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 3000]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
          f"; plotboard from {env()['PYTHONPATH']}")
    print("| charts | build wall s | build CPU s (all processes) | run wall s | run: daemon's own CPU s | run/build wall |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="plotboard-scale-"))
        try:
            b = time_build(make_board(work / "build", n))
            r = time_run(make_board(work / "run", n), n)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"| {n:,} | {b['wall_s']:.1f} | {b['cpu_s_all']:.1f} | {r['wall_s']:.1f} | {r['cpu_s_daemon']:.1f} | "
              f"{r['wall_s'] / b['wall_s']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
