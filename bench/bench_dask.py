"""Charts per second for a 200-chart board: local worker processes vs a Dask LocalCluster.

Standalone: `python bench/bench_dask.py [--charts 200] [--repeat 3]` from the repository root.
Every chart is the reference chart (a 10,000-point line read from its own CSV, 800x400 px at
100 dpi, PNG only). Three figures per executor:

- build: `plotboard build --force` through the real CLI, wall clock, as cron would run it
  (the local pool starts cold in every build; the cluster's workers stay up between builds);
- throughput: the 200 jobs submitted at once to an executor that is already warm;
- overhead per render: jobs submitted one at a time, wall clock of each minus the time its
  render took inside the worker (duration_ms): what the executor adds to a render's latency.

The cluster is a distributed.LocalCluster in its own process (2 worker processes, 1 thread
each, on 127.0.0.1), as a scheduler on another host would be.
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLUSTER = """
import signal, sys, threading
from distributed import LocalCluster

def main():
    cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    cluster.wait_for_workers(int(sys.argv[1]), timeout=120)
    print(cluster.scheduler_address, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    cluster.close(timeout=30)

if __name__ == "__main__":
    main()
"""

PLOTS = '''
import numpy as np

def reference(fig, inputs, **params):
    data = np.loadtxt(inputs[0], delimiter=",", skiprows=1, ndmin=2)
    ax = fig.add_subplot()
    ax.plot(data[:, 0], data[:, 1], linewidth=0.8, color="tab:blue")
    ax.set_title(params.get("title", "Reference chart"))
    ax.grid(True, alpha=0.3)
'''


def write_board(root: Path, charts: int, executor: str) -> Path:
    import numpy as np

    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "plots.py").write_text(PLOTS)
    for i in range(charts):
        values = 50.0 + np.cumsum(np.random.default_rng(i).normal(0.0, 1.0, 10_000))
        lines = ["t,value", *(f"{t},{v:.4f}" for t, v in enumerate(values))]
        (root / "data" / f"s{i:03d}.csv").write_text("\n".join(lines) + "\n")
    toml = [f'[board]\ntitle = "bench"\nworkers = {os.cpu_count()}\nrender_timeout = "60s"\n{executor}\n',
            "[defaults]\nsize = [8, 4]\ndpi = 100\nhidpi = false\n"]
    for i in range(charts):
        toml.append(f'[[charts]]\nname = "c{i:03d}"\ntitle = "Chart {i}"\nplot = "plots:reference"\n'
                    f'inputs = ["data/s{i:03d}.csv"]\nparams = {{ title = "Series {i}" }}\n')
    board = root / "plotboard.toml"
    board.write_text("\n".join(toml))
    return board


def cli_build(board: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "renderer", "build", "--force", "-c", str(board)],
                            env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"build failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def executor_figures(make, board_file: Path, serial: int) -> tuple[float, float, float]:
    """(charts/s with all jobs at once, mean overhead ms, mean render ms) on a warm executor."""
    from renderer.store.workspace import make_job
    from renderer.board.config import load_board
    from renderer.render.jobs import RenderOutput
    from renderer.store.fingerprints import expand_inputs

    board = load_board(board_file)
    jobs = [make_job(board, c, expand_inputs(c)) for c in board.charts]
    executor = make(board)
    try:
        for f in [executor.submit(job) for job in jobs[: 2 * (os.cpu_count() or 2)]]:
            f.result()  # warm every worker
        started = time.perf_counter()
        outcomes = [f.result() for f in [executor.submit(job) for job in jobs]]
        rate = len(jobs) / (time.perf_counter() - started)
        failed = [o for o in outcomes if not isinstance(o, RenderOutput)]
        if failed:
            sys.exit(f"{len(failed)} renders failed, e.g. {failed[0]}")
        overheads, renders = [], []
        for job in jobs[:serial]:
            started = time.perf_counter()
            outcome = executor.submit(job).result()
            wall = (time.perf_counter() - started) * 1000
            overheads.append(wall - outcome.duration_ms)
            renders.append(outcome.duration_ms)
    finally:
        executor.close()
    return rate, statistics.mean(overheads), statistics.mean(renders)


def start_cluster(workers: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-c", CLUSTER, str(workers)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    address = proc.stdout.readline().strip() if ready else ""
    if not address.startswith("tcp://"):
        proc.kill()
        sys.exit("the LocalCluster did not start")
    return proc, address


def machine() -> str:
    import distributed
    import matplotlib

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"matplotlib {matplotlib.__version__}, distributed {distributed.__version__}, "
            f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--charts", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="CLI builds per executor (first and best shown)")
    ap.add_argument("--serial", type=int, default=40, help="jobs submitted one at a time for the overhead")
    args = ap.parse_args()
    workers = os.cpu_count() or 2
    print(machine())
    with tempfile.TemporaryDirectory(prefix="plotboard-bench-dask-") as tmp:
        cluster, address = start_cluster(workers)
        try:
            boards = {
                "local": write_board(Path(tmp) / "local", args.charts, ""),
                "dask": write_board(Path(tmp) / "dask", args.charts,
                                    f'executor = "dask"\nscheduler = "{address}"'),
            }
            from renderer.executors.factory import make_executor

            # Alternate the two so a change in the machine's load hits both alike.
            builds: dict[str, list[float]] = {kind: [] for kind in boards}
            for _ in range(args.repeat):
                for kind, board in boards.items():
                    builds[kind].append(cli_build(board))
            rows = [(kind, builds[kind], *executor_figures(make_executor, board, args.serial))
                    for kind, board in boards.items()]
        finally:
            cluster.send_signal(signal.SIGTERM)
            try:
                cluster.wait(timeout=60)
            except subprocess.TimeoutExpired:
                cluster.kill()
                cluster.wait()
    print(f"{args.charts} charts (10k-point line, 800x400 px, PNG), {workers} local workers / "
          f"{workers} Dask workers x 1 thread; load average now {os.getloadavg()[0]:.2f}")
    print(f"{'executor':<9} {'build first s':>13} {'build best s':>12} {'build charts/s':>14} "
          f"{'warm charts/s':>13} {'render ms':>9} {'overhead ms':>11}")
    for kind, builds, rate, overhead, render in rows:
        best = min(builds)
        print(f"{kind:<9} {builds[0]:>13.2f} {best:>12.2f} {args.charts / best:>14.1f} "
              f"{rate:>13.1f} {render:>9.1f} {overhead:>11.1f}")


if __name__ == "__main__":
    main()
