"""Zoom on demand under load: 50 concurrent viewers on one chart, against Munin-style draw per request.

    python bench/zoom.py [--viewers 50] [--workers 2]     # about a minute

A board of two charts under `plotboard run --serve`: `ref`, the reference chart (10,000 points,
800 x 400 px) with `zoom = true`, its plot drawing the rows inside [end - window, end]; and
`tick`, a tiny chart with `every = "1s"` whose plot notes when each render starts. Four rounds of
`--viewers` threads asking /render/ref.png at once, each viewer one request (a 503 is retried
after its Retry-After, as a polite client would, and counted):

- same range, cold (the cache empty) and then cached;
- different ranges (one `end` per viewer), cold and then cached.

For each: renders done (counted by the plot), p50/p95 of the answer time, 503s, and the
scheduled chart's delay meanwhile (the gaps between `tick`'s render starts beyond its 1 s,
against the same taken while idle). The baseline (c): bench/baseline_flask.py under gunicorn with
as many workers, a Figure drawn per request (munin's dynazoom idiom; nothing cached), the same
two kinds of round. Raw figures: bench/results/zoom-*.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))

import reference  # noqa: E402
from daemon_helpers import Daemon, cli_env, wait_for  # noqa: E402
from browser import accepts, free_port  # noqa: E402

T0 = 1_700_000_000.0  # the reference CSV's row i is at T0 + 60 i (a week of minutes)
PLOTS = '''
import os, time
import numpy as np

HERE = os.path.dirname(__file__)

def ref(fig, inputs, window=3600.0, window_name=None, end=None, **params):
    with open(os.path.join(HERE, "renders.log"), "a") as f:
        f.write(f"{window_name} {time.time()}\\n")
    data = np.loadtxt(inputs[0], delimiter=",", skiprows=1, ndmin=2)
    t = %r + 60 * data[:, 0]
    end = t[-1] if end is None else end
    inside = (t >= end - window) & (t <= end)
    ax = fig.add_subplot()
    ax.plot(t[inside], data[inside, 1], linewidth=0.8)
    ax.set_xlim(end - window, end)

def tick(fig, inputs, **params):
    with open(os.path.join(HERE, "ticks.log"), "a") as f:
        f.write(f"{time.time()}\\n")
    fig.add_subplot().plot([1, 2, 3])
''' % T0

BOARD = '''
[board]
title = "Zoom bench"
workers = %d

[[charts]]
name = "ref"
plot = "plots:ref"
inputs = ["data/ref.csv"]
size = [8, 4]
dpi = 100
hidpi = false
windows = ["1d", "7d"]
zoom = true

[[charts]]
name = "tick"
plot = "plots:tick"
every = "1s"
size = [2, 1]
dpi = 40
hidpi = false
'''


def fetch(port: int, path: str) -> tuple[float, int, int]:
    """(seconds to the whole answer, 503s met, status), retrying after each 503's Retry-After."""
    started, refused = time.perf_counter(), 0
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            status, retry = r.status, float(r.getheader("Retry-After") or 1)
        finally:
            conn.close()
        if status != 503:
            return time.perf_counter() - started, refused, status
        refused += 1
        time.sleep(retry)


def round_of(port: int, paths: list[str]) -> dict:
    results: list[tuple[float, int, int]] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(paths))

    def viewer(path: str) -> None:
        gate.wait()
        answer = fetch(port, path)
        with lock:
            results.append(answer)

    started = time.time()
    threads = [threading.Thread(target=viewer, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(r[0] for r in results)
    return {"started": started, "ended": time.time(), "p50_ms": 1000 * pct(times, 50),
            "p95_ms": 1000 * pct(times, 95), "max_ms": 1000 * times[-1], "refused": sum(r[1] for r in results),
            "statuses": sorted({r[2] for r in results})}


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def tick_delays(root: Path, start: float, end: float) -> list[float]:
    """How much later than 1 s after the one before each of `tick`'s renders in [start, end] began."""
    starts = [float(x) for x in (root / "ticks.log").read_text().split()]
    return [b - a - 1.0 for a, b in zip(starts, starts[1:]) if start <= b <= end]


def renders(root: Path, start: float, end: float) -> int:
    lines = (root / "renders.log").read_text().split("\n")
    return sum(1 for line in lines if line.startswith("custom ") and start <= float(line.split()[1]) <= end + 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="plotboard-zoom-bench-"))
    out: dict = {"viewers": args.viewers, "workers": args.workers, "at": datetime.now().isoformat(timespec="seconds"),
                 "loadavg_before": os.getloadavg()}
    try:
        (root / "data").mkdir()
        reference.write_csv(root / "data" / "ref.csv", 1)
        (root / "plots.py").write_text(PLOTS)
        (root / "plotboard.toml").write_text(BOARD % args.workers)
        port = free_port()
        daemon = Daemon(root / "plotboard.toml", "--serve", str(port), env=cli_env())
        try:
            wait_for(lambda: (root / "ticks.log").exists() and len((root / "ticks.log").read_text().split()) > 5,
                     60, "the schedule to settle")
            idle_from = time.time()
            time.sleep(5)  # the scheduled chart alone: its delay at rest
            out["tick_idle_ms"] = summary(tick_delays(root, idle_from, time.time()))
            last = T0 + 60 * (reference.POINTS - 1)
            same = [f"/render/ref.png?window=6h&end={last - 86400}"] * args.viewers
            spread = [f"/render/ref.png?window=6h&end={last - 600 * 60 * i}" for i in range(args.viewers)]
            for name, paths in [("same range", same), ("different ranges", spread)]:
                for state in ("cold", "cached"):
                    r = round_of(port, paths)
                    r["renders"] = renders(root, r["started"], r["ended"])
                    r["tick_delay_ms"] = summary(tick_delays(root, r["started"], r["ended"] + 1.5))
                    out[f"{name}, {state}"] = r
                    print(f"{name}, {state}: {r}", flush=True)
        finally:
            daemon.stop()
        out["baseline"] = baseline(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["loadavg_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"zoom-{datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    print(f"raw figures: {path}")


def summary(delays: list[float]) -> dict:
    values = sorted(delays) or [0.0]
    return {"n": len(delays), "p50": 1000 * pct(values, 50), "p95": 1000 * pct(values, 95), "max": 1000 * values[-1]}


def baseline(root: Path, args: argparse.Namespace) -> dict:
    """(c) Flask + gunicorn drawing a Figure per request: the same rounds (its URL ignores the range)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                             "--chdir", str(BENCH), "baseline_flask:app"],
                            env={**cli_env(), "BENCH_CSV": str(root / "data" / "ref.csv")},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: accepts(port), 60, "gunicorn")
        fetch(port, "/chart.png")
        result = {}
        for name in ("same range", "different ranges"):
            r = round_of(port, [f"/chart.png?end={i if name != 'same range' else 0}" for i in range(args.viewers)])
            r["renders"] = args.viewers  # one Figure per request
            result[name] = r
            print(f"baseline {name}: {r}", flush=True)
        return result
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
