"""What time windows save under `run`: N files x 4 windows, every file changing once a minute.

    python bench/windows_cost.py [--minutes N] [--files N]   # defaults 5 and 1,000: about 20 minutes

One family (`foreach = "data/h*.csv"`, N tiny charts: a 40 x 20 px line of the rows inside the
window) under `plotboard run -v --log-format json`, while a feeder rewrites each CSV once a minute
(N/60 files a second, evenly spread, renamed into place). Three periods of --minutes each, after
the cold pass (every window in status.json rendered) and a warm-up with the feeder running:
every window on every change (the baseline, `windows = { "1d" = "1s", "7d" = "1s", ... }`);
windowed after a cold start (`windows = ["1d", "7d", "30d", "365d"]`: the cold pass rendered
every later window, so none is due again within the period); windowed with phases spread (the
daemon stopped, each later window's `rendered_at` in .plotboard/state.json set to a random time
within its last interval, as on a board whose charts were not all rendered in the same minute,
and started again: later windows come due at their long-run rate).

Renders are counted from the daemon's log (a line per window; status.json's first-window count
cross-checks it). CPU: the daemon and every process below it, each living process's user + system
+ reaped children's time (a recycled worker counts through the forkserver), read again until the
tree is the same before and after the reads. Lag: from a change (the feeder's rename) to the
publish of the first render of that chart started after it. Raw figures: bench/results/windows-*.json.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import run as harness  # noqa: E402  machine(), capacity(), loadavg()
from scale import env  # noqa: E402

WINDOWS = {"1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "365d": 365 * 86400.0}
INTERVAL = {w: s / 288 for w, s in WINDOWS.items()}  # a later window's, in the list form (renderer.board.kinds.WINDOW_SHARE)
FIRST = list(WINDOWS)[0]
PERIOD = 60.0  # seconds between two changes of one file
LOG_TICK = 0.001  # the log's times are cut to the millisecond: a start logged up to 1 ms before a change may follow it
TAIL = 15.0  # seconds the daemon runs on after a period, so the period's last changes get rendered
AGES = [400 * 86400 * 0.8**k for k in range(32)] + [0.0]  # row ages: 1d holds 5 rows, 365d 32
PLOT = '''from renderer.helpers import last

def tiny(fig, inputs, window=86400.0, **params):
    rows = last([tuple(map(float, line.split(","))) for line in open(inputs[0]).read().split()[1:]], window)
    fig.add_subplot().plot([r[0] for r in rows], [r[1] for r in rows])
'''


def expected_per_hour(n: int, every_change: bool, later: bool = True) -> float:
    """Renders an hour: the first window (every_change: each) once per change, later ones once per interval."""
    if every_change:
        return n * len(WINDOWS) * 3600 / PERIOD
    rest = sum(3600 / INTERVAL[w] for w in list(WINDOWS)[1:]) if later else 0.0
    return n * (3600 / PERIOD + rest)


# -- the board and its data ----------------------------------------------------------------


def write_data(data: Path, i: int, width: int, rng: random.Random) -> float:
    """Rewrite file i (a temp file renamed into place); returns the time just before the rename
    (the daemon may start the render before this thread reads the clock again)."""
    now = time.time()
    text = "t,v\n" + "".join(f"{now - age:.0f},{rng.random():.4f}\n" for age in AGES)
    tmp = data / f".h{i:0{width}d}.tmp"
    tmp.write_text(text)
    at = time.time()
    os.replace(tmp, data / f"h{i:0{width}d}.csv")
    return at


def make_board(folder: Path, n: int, every_change: bool) -> Path:
    data = folder / "data"
    data.mkdir(parents=True)
    (folder / "plots.py").write_text(PLOT)
    windows = "{ " + ", ".join(f'"{w}" = "1s"' for w in WINDOWS) + " }" if every_change else json.dumps(list(WINDOWS))
    (folder / "plotboard.toml").write_text(
        f"[board]\nworkers = {os.cpu_count() or 2}\n[defaults]\nsize = [1, 0.5]\ndpi = 40\nhidpi = false\n"
        f'[[charts]]\nname = "h{{match}}"\nforeach = "data/h*.csv"\ninputs = ["{{path}}"]\n'
        f'plot = "plots:tiny"\nwindows = {windows}\n')
    rng = random.Random(n)
    for i in range(n):
        write_data(data, i, len(str(n - 1)), rng)
    return folder / "plotboard.toml"


class Feeder(threading.Thread):
    """Rewrites each of n files once per PERIOD, evenly spread, recording when each write landed."""

    def __init__(self, data: Path, n: int) -> None:
        super().__init__(name="feeder", daemon=True)
        self.data, self.n, self.width = data, n, len(str(n - 1))
        self.writes: list[list[float]] = [[] for _ in range(n)]
        self.late = 0.0  # the most a write landed after its due time, seconds
        self.halt = threading.Event()

    def run(self) -> None:
        rng, step, start, k = random.Random(1), PERIOD / self.n, time.time(), 0
        while not self.halt.is_set():
            due = start + k * step
            if due > time.time() and self.halt.wait(due - time.time()):
                return
            landed = write_data(self.data, k % self.n, self.width, rng)
            self.writes[k % self.n].append(landed)
            self.late = max(self.late, landed - due)
            k += 1


# -- the daemon, its CPU and its log -------------------------------------------------------


class Daemon:
    """`plotboard run -v --log-format json` on a board, its log in a file."""

    def __init__(self, board: Path, log: Path) -> None:
        self.board, self.log = board, log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board), "-v",
                                          "--log-format", "json"], env=env(), stdout=subprocess.DEVNULL, stderr=err)

    def wait_rendered(self, n: int, timeout: float = 900.0) -> float:
        """Seconds until status.json shows every window of the n charts rendered."""
        status, t0 = self.board.parent / "public" / "status.json", time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.proc.returncode}); see {self.log}")
            try:
                charts = json.loads(status.read_text())["charts"]
            except (OSError, ValueError, KeyError):
                charts = []
            if len(charts) == n and all(w.get("rendered_at") for c in charts for w in c.get("windows", [c])):
                return time.time() - t0
            time.sleep(1.0)
        raise RuntimeError(f"not every chart rendered within {timeout:.0f} s")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of process `pid` and every process below it, living or reaped (each
    living process's own and its reaped children's), read again until no process was reaped
    between the reads (it would count twice or not at all)."""
    root = psutil.Process(pid)
    for _ in range(100):
        try:
            before = {p.pid for p in root.children(recursive=True)}
            times = {p.pid: p.cpu_times() for p in [root, *root.children(recursive=True)]}
            after = {p.pid for p in root.children(recursive=True)}
        except psutil.NoSuchProcess:
            continue
        if before == after == set(times) - {pid}:
            own = times[pid]
            total = sum(t.user + t.system + t.children_user + t.children_system for t in times.values())
            return {"all": total, "daemon": own.user + own.system, "processes": len(times), "at": time.time()}
    raise RuntimeError("the process tree kept changing while it was read")


def read_log(path: Path) -> dict[str, Any]:
    """Per internal chart: when renders started, when they were published (with trigger) or failed."""
    starts: dict[str, list[float]] = defaultdict(list)
    done: dict[str, list[tuple[float, str]]] = defaultdict(list)
    failed: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        t, msg = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp(), entry["message"]
        if entry.get("result") in ("changed", "unchanged"):
            done[entry["chart"]].append((t, entry["trigger"]))
        elif entry.get("result") == "failed":
            failed[entry["chart"]].append(t)
        elif msg.startswith("started "):
            starts[msg.split()[1]].append(t)
    return {"starts": starts, "done": done, "failed": failed}


def window_of(name: str) -> str:
    return name.rsplit(".", 1)[1] if "." in name else FIRST


# -- one measured period -------------------------------------------------------------------


def status_renders(board: Path) -> int:
    """Sum of `renders` over status.json's charts (each chart's first window)."""
    try:
        return sum(c.get("renders", 0) for c in json.loads((board.parent / "public" / "status.json").read_text())["charts"])
    except (OSError, ValueError, KeyError):
        return -1


def page_writes(board: Path, seconds: float) -> int:
    """How many times status.json is replaced in the next `seconds` (looked at every 20 ms)."""
    path, end, last, count = board.parent / "public" / "status.json", time.time() + seconds, None, 0
    while time.time() < end:
        st = path.stat() if path.exists() else None
        now = (st.st_ino, st.st_mtime_ns) if st else last
        count += last is not None and now != last
        last = now
        time.sleep(0.02)
    return count


def measure(daemon: Daemon, minutes: float, warmup: float) -> dict[str, Any]:
    """Warm up, then CPU, load and status.json's count at the start and end of the period, and
    how often the pages were written in it."""
    time.sleep(warmup)
    start = {"cpu": tree_cpu(daemon.proc.pid), "load": harness.loadavg(), "status_renders": status_renders(daemon.board)}
    pages = page_writes(daemon.board, minutes * 60)
    end = {"cpu": tree_cpu(daemon.proc.pid), "load": harness.loadavg(), "status_renders": status_renders(daemon.board)}
    time.sleep(TAIL)  # the period's last changes get rendered before the daemon stops
    return {"t0": start["cpu"]["at"], "t1": end["cpu"]["at"], "start": start, "end": end, "page_writes": pages}


def pct(values: list[float], q: float) -> float | None:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else None


def lags(log: dict[str, Any], writes: list[list[float]], names: list[list[str]], t0: float, t1: float) -> dict[str, Any]:
    """From each change in [t0, t1] to the publish of the first render of each of `names[i]`
    (file i's charts that follow every change) started after it; what was pending at t1."""
    out: list[tuple[float, float]] = []  # (change time, lag)
    pending: list[float] = []  # ages at t1 of changes not published by t1
    wanted = 0  # (change, chart) pairs
    for i, times in enumerate(writes):
        for name in names[i]:
            starts = log["starts"].get(name, [])
            ends = sorted([t for t, _ in log["done"].get(name, [])] + log["failed"].get(name, []))
            for w in (t for t in times if t0 <= t <= t1):
                wanted += 1
                k = bisect.bisect_left(starts, w - LOG_TICK)
                j = bisect.bisect_left(ends, starts[k]) if k < len(starts) else len(ends)
                if j < len(ends):
                    out.append((w, ends[j] - w))
                if j >= len(ends) or ends[j] > t1:
                    pending.append(t1 - w)
    by_minute = defaultdict(list)
    for w, lag in out:
        by_minute[int((w - t0) // 60)].append(lag)
    values = [lag for _, lag in out]
    return {"changes": len(out), "p50_s": pct(values, 0.5), "p95_s": pct(values, 0.95), "max_s": max(values, default=None),
            "p95_by_minute_s": [round(pct(v, 0.95), 3) for _, v in sorted(by_minute.items())],
            "never_rendered": wanted - len(out), "pending_at_end": len(pending), "oldest_pending_s": max(pending, default=0.0)}


def figures(log: dict[str, Any], period: dict[str, Any], feeder: Feeder, n: int, every_change: bool,
            expected: float) -> dict[str, Any]:
    """Renders per window, rates per hour, CPU and lag of one period."""
    t0, t1 = period["t0"], period["t1"]
    hours, width = (t1 - t0) / 3600, len(str(n - 1))
    per_window = Counter(window_of(name) for name, done in log["done"].items() for t, _ in done if t0 <= t <= t1)
    triggers = Counter(trig for done in log["done"].values() for t, trig in done if t0 <= t <= t1)
    renders = sum(per_window.values())
    cpu = period["end"]["cpu"]["all"] - period["start"]["cpu"]["all"]
    own = period["end"]["cpu"]["daemon"] - period["start"]["cpu"]["daemon"]
    follow = list(WINDOWS) if every_change else [FIRST]
    names = [[f"h{i:0{width}d}" + ("" if w == FIRST else f".{w}") for w in follow] for i in range(n)]
    changes = sum(1 for ts in feeder.writes for t in ts if t0 <= t <= t1)
    lag = lags(log, feeder.writes, names, t0, t1)
    followed = sum(per_window.get(w, 0) for w in follow) / max(changes * len(follow), 1)
    return {"seconds": t1 - t0, "changes": changes, "renders": renders, "renders_by_window": dict(per_window),
        "triggers": dict(triggers), "failures": sum(1 for f in log["failed"].values() for t in f if t0 <= t <= t1),
        "renders_per_hour": renders / hours, "expected_per_hour": expected,
        "cpu_s": cpu, "cpu_s_daemon": own, "cpu_s_per_hour": cpu / hours, "cpu_ms_per_render": 1000 * cpu / max(renders, 1),
        "first_window_renders_status_json": period["end"]["status_renders"] - period["start"]["status_renders"],
        "first_window_renders_log": per_window.get(FIRST, 0),
        "lag": lag, "followed": followed, "kept_up": followed >= 0.99 and (lag["max_s"] or 0) < PERIOD,
        "load_start": period["start"]["load"], "load_end": period["end"]["load"]}


def intervals_kept(log: dict[str, Any], seeded: dict[str, float], every_change: bool) -> dict[str, Any]:
    """Per later window: the shortest time between two of its renders in one daemon's run (a
    seeded `rendered_at` counting as a render) against its interval, and how many gaps were shorter."""
    out = {}
    for w in list(WINDOWS)[1:]:
        least, short = None, 0
        limit = 1.0 if every_change else INTERVAL[w]
        for name, done in log["done"].items():
            if window_of(name) == w:
                times = sorted([t for t, _ in done] + ([seeded[name]] if name in seeded else []))
                for a, b in zip(times, times[1:]):
                    least = b - a if least is None else min(least, b - a)
                    short += b - a < limit
        out[w] = {"interval_s": limit, "least_gap_s": least, "shorter_gaps": short}
    return out


# -- the run -------------------------------------------------------------------------------


def spread_phases(board: Path, seed: int) -> dict[str, float]:
    """Set each later window's rendered_at to a random time within its last interval."""
    path = board.parent / ".plotboard" / "state.json"
    state, rng, now = json.loads(path.read_text()), random.Random(seed), time.time()
    seeded = {}
    for name, rec in state["charts"].items():
        if "." in name:
            rec["rendered_at"] = seeded[name] = now - rng.random() * INTERVAL[window_of(name)]
    tmp = path.with_suffix(".bench-tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)
    return seeded


def variant(work: Path, n: int, minutes: float, warmup: float, every_change: bool) -> list[dict[str, Any]]:
    """One board: its cold pass and its measured period(s) (the windowed board also with phases spread)."""
    folder = work / ("every-change" if every_change else "windowed")
    board = make_board(folder, n, every_change)
    free, load0 = harness.capacity(), harness.loadavg()
    daemon = Daemon(board, folder / "run-1.log")
    cold = daemon.wait_rendered(n)
    print(f"  cold pass: {n * len(WINDOWS):,} renders in {cold:.1f} s", flush=True)
    feeder = Feeder(folder / "data", n)
    feeder.start()
    periods, paths, seeded = [measure(daemon, minutes, warmup)], [daemon.log], {}
    daemon.stop()
    if not every_change:
        seeded = spread_phases(board, n)
        daemon = Daemon(board, folder / "run-2.log")
        periods.append(measure(daemon, minutes, warmup))
        paths.append(daemon.log)
        daemon.stop()
    feeder.halt.set()
    feeder.join()
    out = []
    for k, (log, period) in enumerate(zip(map(read_log, paths), periods)):
        name = "every window on every change" if every_change else ("windowed, phases spread" if k else "windowed, after a cold start")
        expected = expected_per_hour(n, every_change, later=bool(k) or every_change)
        fig = figures(log, period, feeder, n, every_change, expected)
        out.append({"variant": name, "log": str(paths[k]), "period": period, "cold_pass_s": cold if k == 0 else None,
                    "cores_free_before": free, "load_before": load0, "feeder_late_max_s": feeder.late,
                    "intervals": intervals_kept(log, seeded if k else {}, every_change), **fig})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The figures, then the checks, as Markdown tables."""
    lines = ["| variant | renders in the period (by window) | renders/h measured | renders/h expected for such a period | "
             "CPU s/h (of it the daemon's loop) | CPU ms a render | lag p50 / p95 / max s | kept up | load avg start -> end |",
             "| --- " * 9 + "|"]
    for r in rows:
        lag, by = r["lag"], ", ".join(f"{w} {r['renders_by_window'].get(w, 0):,}" for w in WINDOWS)
        lines.append(
            f"| {r['variant']} | {r['renders']:,} ({by}) | {r['renders_per_hour']:,.0f} | {r['expected_per_hour']:,.0f} | "
            f"{r['cpu_s_per_hour']:,.0f} ({r['cpu_s_daemon'] * 3600 / r['seconds']:,.0f}) | {r['cpu_ms_per_render']:.1f} | "
            f"{lag['p50_s']:.2f} / {lag['p95_s']:.2f} / {lag['max_s']:.2f} | {'yes' if r['kept_up'] else 'no'} | "
            f"{r['load_start'][0]} -> {r['load_end'][0]} |")
    lines += ["", "| variant | changes | renders / (changes x windows that follow each) | pending at the end (oldest) | "
              "lag p95 by minute, s | later windows: least gap between renders / interval, s | first-window renders: log / status.json "
              "| pages written |", "| --- " * 8 + "|"]
    for r in rows:
        gaps = ", ".join(f"{w} {'-' if v['least_gap_s'] is None else round(v['least_gap_s'], 1)} / {v['interval_s']:g}"
                         for w, v in r["intervals"].items())
        lines.append(f"| {r['variant']} | {r['changes']:,} | {r['followed']:.3f} | {r['lag']['pending_at_end']} "
                     f"({r['lag']['oldest_pending_s']:.1f} s) | {r['lag']['p95_by_minute_s']} | {gaps} | "
                     f"{r['first_window_renders_log']:,} / {r['first_window_renders_status_json']:,} | "
                     f"{r['period']['page_writes']} ({r['period']['page_writes'] / r['seconds'] * 60:.0f} a minute) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of each measured period")
    parser.add_argument("--files", type=int, default=1000, help="files in the family (charts)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of feeding before each period")
    parser.add_argument("--keep", action="store_true", help="keep the boards and the daemons' logs (the folder is printed)")
    args = parser.parse_args()
    machine = harness.machine()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}, "
          f"matplotlib {machine['matplotlib']}; load average {machine['load_average']}", flush=True)
    n, started, tmp = args.files, time.time(), Path(tempfile.mkdtemp(prefix="plotboard-windows-"))
    print(f"boards and logs in {tmp}", flush=True)
    try:
        rows = variant(tmp, n, args.minutes, args.warmup, every_change=True)
        rows += variant(tmp, n, args.minutes, args.warmup, every_change=False)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    base, spread = rows[0], rows[-1]
    print(table(rows))
    print(f"expected per hour from the intervals: every window on every change {expected_per_hour(n, True):,.0f}; windowed "
          f"{expected_per_hour(n, False):,.0f} = {n:,} x (60 + 60/35 + 60/150 + 60/1825), "
          f"{expected_per_hour(n, True) / expected_per_hour(n, False):.2f}x fewer. Measured, every change / windowed with phases "
          f"spread: renders {base['renders_per_hour'] / spread['renders_per_hour']:.2f}x, CPU "
          f"{base['cpu_s_per_hour'] / spread['cpu_s_per_hour']:.2f}x.")
    for r in rows:  # what all the renders asked for would cost at the CPU a render measured
        r["cpu_s_per_hour_asked"] = r["cpu_ms_per_render"] * expected_per_hour(n, r is base) / 1000
        print(f"{r['variant']}: {r['followed']:.0%} of the renders its changes asked for; all {expected_per_hour(n, r is base):,.0f} "
              f"an hour at {r['cpu_ms_per_render']:.1f} ms a render: {r['cpu_s_per_hour_asked']:,.0f} CPU s/h, "
              f"{r['cpu_s_per_hour_asked'] / 3600:.2f} cores (the machine has {os.cpu_count()})")
    print(f"A {args.minutes:g}-minute period is {args.minutes / 35:.2f} of the 7d window's 35-minute interval: after a cold start "
          f"no later window comes due in it; with phases spread they come due at their long-run rate, on average.")
    machine["load_average_end"] = harness.loadavg()
    print(f"load average at the end {machine['load_average_end']}; took {(time.time() - started) / 60:.1f} min")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"windows-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.write_text(json.dumps({"machine": machine, "args": vars(args), "variants": rows}, indent=1))
    print(f"raw figures: {out}")


if __name__ == "__main__":
    main()
