"""plotboard's benchmarks, each next to its baseline in the same run (issue 5).

    python bench/run.py                 # everything (about 15-25 minutes on 2 cores)
    python bench/run.py latency serve   # a subset, by name
    python bench/run.py --quick         # fewer repeats and shorter runs (a smoke run)
    python bench/run.py --list          # the benchmarks' names
    python bench/run.py push            # an open page told by /events vs polling (~5 min; bench/push.py)
    python bench/run.py scale           # fleet boards, 1k/3k/10k charts (~25 min; bench/fleet.py),
                                        # run only when named; --sizes 1000,3000 for other sizes

Run from anywhere with the interpreter that has plotboard's dependencies and the `bench`
extra (flask, gunicorn, watchdog[watchmedo], psutil), plus nginx and wrk from apt. Every
process is started with sys.executable (never a shell shim on PATH), every server listens on
127.0.0.1 only. Prints the machine, a table of medians, p95s and ratios, and writes all figures
(raw samples included) as JSON to bench/results/. Other load on the machine skews figures: the
load average is recorded before and after each benchmark.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PY = sys.executable
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))  # tests/browser.py: nginx and ports, shared with the tests

import fleet  # noqa: E402  (the `scale` benchmark)
import push  # noqa: E402  (the `push` benchmark)
import reference  # noqa: E402
import daemon_helpers  # noqa: E402
from browser import Nginx, accepts, free_port  # noqa: E402
from daemon_helpers import wait_for  # noqa: E402

WORKERS = os.cpu_count() or 2
SOURCE = REPO  # where `python -m renderer` comes from; --src points it at another tree
LAYOUT: str | None = None  # the reference boards' `layout` (--layout); None: plotboard's default
PYCACHE = Path(tempfile.gettempdir()) / "plotboard-bench-pycache"
PNG_END = b"IEND\xaeB`\x82"
BENCHMARKS: dict[str, Callable[["Run"], None]] = {}
OPT_IN = {"scale"}  # long: run only when named
SEEDS = itertools.count(10_000)


def benchmark(func: Callable[["Run"], None]) -> Callable[["Run"], None]:
    BENCHMARKS[func.__name__.removeprefix("bench_")] = func
    return func


# -- figures -------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, Any]:
    """n, median, p95 (nearest rank), min, max of a list of samples."""
    if not values:
        return {"n": 0}
    s = sorted(values)
    p95 = s[min(len(s) - 1, max(0, round(0.95 * len(s) + 0.5) - 1))]
    return {"n": len(s), "median": statistics.median(s), "p95": p95, "min": s[0], "max": s[-1]}


SPIN = """
import time
end = time.perf_counter() + float(__import__("sys").argv[1])
n = 0
while time.perf_counter() < end:
    for _ in range(10_000):
        pass
    n += 1
print(n)
"""


def capacity(seconds: float = 1.0) -> float:
    """How many cores' worth of CPU the machine gives now: a busy loop's work in WORKERS
    processes at once over the same loop's work in one process alone (2.0 = two free cores)."""
    def spin(k: int) -> int:
        procs = [subprocess.Popen([PY, "-c", SPIN, str(seconds)], stdout=subprocess.PIPE, text=True)
                 for _ in range(k)]
        return sum(int(p.communicate()[0]) for p in procs)

    one = spin(1)
    return round(spin(WORKERS) / one, 2) if one else float("nan")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions."""
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    versions = {}
    for dist in ("matplotlib", "numpy", "pillow", "watchdog", "flask", "gunicorn"):
        try:
            versions[dist] = version(dist)
        except Exception:  # noqa: BLE001
            versions[dist] = "missing"
    tools = {}
    for tool, args in (("nginx", ["-v"]), ("wrk", ["-v"])):
        path = shutil.which(tool) or f"/usr/sbin/{tool}"
        try:
            out = subprocess.run([path, *args], capture_output=True, text=True, timeout=10)
            tools[tool] = (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            tools[tool] = "missing"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(), "python": platform.python_version(), "executable": PY,
        **versions, **tools, "load_average": loadavg(),
    }


# -- processes and files ----------------------------------------------------------------------


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(SOURCE)
    e["MPLBACKEND"] = "Agg"
    e["PYTHONUNBUFFERED"] = "1"
    # Bytecode is cached as an installed package's would be (pip compiles on install); the
    # cache lives outside the repository.
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return e


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    """Wall-clock seconds of a whole process; fails the run if it fails."""
    return timed_run(cmd, cwd)[0]


def timed_run(cmd: list[str], cwd: Path | None = None) -> tuple[float, str]:
    """Wall-clock seconds of a whole process and its stderr; fails the run if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr


def log_time(line: str) -> float:
    """Epoch seconds of a plotboard log line ('2026-11-22 01:03:57,364 INFO ...', local time)."""
    stamp = line[:23]
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:23]) / 1000


def plotboard(*args: str) -> list[str]:
    return [PY, "-m", "renderer", *args]


def stop_process(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def signature(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def complete_png(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(PNG_END)


def wait_new_png(path: Path, before: tuple | None, timeout: float = 20.0) -> float:
    """perf_counter() when `path` is first seen as a complete PNG other than `before`."""
    deadline = time.perf_counter() + timeout
    seen = before
    while True:
        sig = signature(path)
        if sig != seen:
            now = time.perf_counter()
            if sig is not None and complete_png(path):
                return now
            seen = sig  # a partial file (a non-atomic writer): look again when it changes
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no new {path.name} within {timeout}s")
        time.sleep(0.001)


def wait_quiet(paths: list[Path], quiet: float, timeout: float = 30.0) -> None:
    """Wait until none of `paths` has changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last = [signature(p) for p in paths]
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise RuntimeError("outputs never came to rest")
        time.sleep(0.02)
        now = [signature(p) for p in paths]
        if now != last:
            last, since = now, time.monotonic()


def write_csv_move(path: Path, text: str) -> None:
    """The careful producer: a hidden temp file in the same folder, then os.replace."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv_inplace(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def make_board(root: Path, charts: int, hidpi: bool = False, workers: int = WORKERS) -> Path:
    """A board of `charts` reference charts, each reading its own CSV; returns the board file."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(BENCH / "reference.py", root / "reference.py")
    for i in range(charts):
        (root / "data" / f"c{i:04d}.csv").write_text(reference.csv_text(i))
    parts = [f'[board]\ntitle = "bench"\noutput = "public"\nworkers = {workers}\nrender_timeout = "60s"\n',
             f"[defaults]\nsize = [8, 4]\ndpi = 100\nhidpi = {'true' if hidpi else 'false'}\n"
             + (f'layout = "{LAYOUT}"\n' if LAYOUT else "")]
    for i in range(charts):
        parts.append(f'[[charts]]\nname = "c{i:04d}"\ntitle = "Chart {i}"\nplot = "reference:reference"\n'
                     f'inputs = ["data/c{i:04d}.csv"]\n')
    board = root / "plotboard.toml"
    board.write_text("\n".join(parts))
    return board


def fresh(board: Path) -> None:
    """Forget every render: no bookkeeping, no output."""
    shutil.rmtree(board.parent / ".plotboard", ignore_errors=True)
    shutil.rmtree(board.parent / "public", ignore_errors=True)


class Daemon(daemon_helpers.Daemon):
    """The tests' daemon wrapper (tests/daemon_helpers.py) with the bench's environment, plus
    a memory reading."""

    def __init__(self, board: Path) -> None:
        super().__init__(board, "-v", env=env())  # -v: a log line per render, which the figures are read from

    def tree_memory(self) -> dict[str, float]:
        """RSS and PSS (MiB) of the daemon and every process below it (forkserver, workers)."""
        import psutil

        root = psutil.Process(self.proc.pid)
        rss = pss = 0
        procs = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                info = p.memory_full_info()
            except psutil.Error:
                continue
            rss += info.rss
            pss += info.pss
            procs += 1
        return {"rss_mib": rss / 2**20, "pss_mib": pss / 2**20, "processes": procs}


# -- the run ---------------------------------------------------------------------------------


class Run:
    """One bench run: options, a scratch folder, and the rows of the table."""

    def __init__(self, quick: bool, work: Path) -> None:
        self.quick = quick
        self.work = work
        self.sizes: list[int] | None = None  # --sizes, for `scale`
        self.rows: list[dict[str, Any]] = []
        self.raw: dict[str, Any] = {}
        self.loads: dict[str, Any] = {}
        self._bare: list[float] = []

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def row(self, bench: str, figure: str, plotboard: Any, baseline: Any = None, baseline_name: str = "",
            unit: str = "", ratio: float | None = None, target: str = "", met: bool | None = None,
            note: str = "") -> None:
        self.rows.append({"bench": bench, "figure": figure, "plotboard": plotboard, "baseline": baseline,
                          "baseline_name": baseline_name, "unit": unit, "ratio": ratio, "target": target,
                          "met": met, "note": note})

    def folder(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def in_process(self, mode: str, n: int) -> dict[str, Any]:
        """bench/bare.py MODE on the reference CSV, in a new process: its JSON figures."""
        csv = self.work / "bare.csv"
        if not csv.exists():
            csv.write_text(reference.csv_text(0))
        out = subprocess.run([PY, str(BENCH / "bare.py"), mode, str(csv), str(n)],
                             env=env(), capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def bare(self, renders: int) -> dict[str, Any]:
        """In-process renders of the reference chart with a bare Figure and savefig."""
        figures = self.in_process("savefig", renders)
        self._bare.extend(figures["render_ms"])
        return figures

    def bare_parallel(self, renders: int, processes: int = WORKERS) -> float:
        """Renders/s of `processes` bare.py processes running at once (what the machine delivers now)."""
        csv = self.work / "bare.csv"
        if not csv.exists():
            csv.write_text(reference.csv_text(0))
        procs = [subprocess.Popen([PY, str(BENCH / "bare.py"), "savefig", str(csv), str(renders)],
                                  env=env(), stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        rate = 0.0
        for proc in procs:
            out, _ = proc.communicate()
            rate += 1000 / statistics.median(json.loads(out)["render_ms"])
        return rate


# -- the benchmarks --------------------------------------------------------------------------


@benchmark
def bench_savefig(run: Run) -> None:
    """The bare in-process savefig rate of the reference chart, and where a render's time goes."""
    figures = run.bare(run.n(60, 15))
    run.raw["savefig"] = figures
    render = stats(figures["render_ms"])
    run.row("savefig", "reference chart, one render in-process (read CSV, plot, savefig PNG)",
            render, unit="ms", note=f"= {1000 / render['median']:.1f} renders/s per process")
    for phase in ("load_ms", "plot_ms", "draw_ms", "savefig_ms"):
        run.row("savefig", f"  phase: {phase[:-3]}", stats(figures[phase]), unit="ms",
                note="savefig = draw + PNG encode + write" if phase == "savefig_ms" else "")
    # plotboard's render step on the same chart, interleaved with the bare idiom in one process.
    figures = run.in_process("render", run.n(40, 10))
    run.raw["render"] = figures
    bare = stats(figures["bare_savefig_ms"])
    for key, level in (("plotboard_ms", "3, the default"), ("plotboard_level6_ms", "6, as savefig's")):
        ours = stats(figures[key])
        run.row("savefig", f"plotboard's render() in-process, png_compression {level}", ours,
                bare, "bare Figure + savefig, interleaved", "ms", bare["median"] / ours["median"],
                note="ratio = how many times faster than the bare idiom")
    # What constrained layout (the default) costs: the same render with layout = "none", interleaved.
    for key, what in (("plotboard", "1x"), ("plotboard_hidpi", "hidpi: 1x + @2x")):
        none, ours = stats(figures[f"{key}_layout_none_ms"]), stats(figures[f"{key}_ms"])
        run.row("savefig", f"plotboard's render() with layout = \"constrained\" (the default), {what}", ours,
                none, "the same with layout = \"none\", interleaved", "ms", ours["median"] / none["median"],
                note=f"ratio = constrained / none: +{ours['median'] - none['median']:.1f} ms a render")


@benchmark
def bench_png(run: Run) -> None:
    """PNG encode cost and size per compress level, to choose the default."""
    figures = run.in_process("png", run.n(30, 8))
    run.raw["png"] = figures
    for key, value in figures.items():
        scale, level, encoder = key.split("/")
        if encoder == "pillow":
            continue
        theirs = figures[f"{scale}/{level}/pillow"]
        ours, base = stats(value["encode_ms"]), stats(theirs["encode_ms"])
        run.row("png", f"PNG encode {scale} image, compress_level {level}: renderer.render.png", ours, base,
                "Pillow (savefig's encoder)", "ms", base["median"] / ours["median"],
                note=f"{value['bytes'] / 1000:.1f} kB vs {theirs['bytes'] / 1000:.1f} kB")


def latency_samples(run: Run, data: Path, out: Path, names: list[str], mode: str, count: int,
                    settle: Callable[[Path], None]) -> list[float]:
    """ms from a producer's completed save to a new complete PNG, `count` samples after 3 warm-ups."""
    write = write_csv_move if mode == "move" else write_csv_inplace
    samples = []
    for i in range(count + 3):
        name = names[i % len(names)]
        text = reference.csv_text(next(SEEDS))  # never the same data twice: the PNG must change
        png = out / f"{name}.png"
        before = signature(png)
        write(data / f"{name}.csv", text)
        started = time.perf_counter()
        done = wait_new_png(png, before)
        if i >= 3:
            samples.append((done - started) * 1000)
        settle(png)
    return samples


@benchmark
def bench_latency(run: Run) -> None:
    """Change -> new complete PNG in place: plotboard's daemon vs watchmedo shell-command (b)."""
    import psutil

    count = run.n(30, 8)
    root = run.folder("latency")
    board = make_board(root, 10)
    names = [f"c{i:04d}" for i in range(10)]
    subprocess.run(plotboard("build", "-c", str(board)), env=env(), check=True, capture_output=True)
    results: dict[str, list[float]] = {}

    renders: dict[str, list[float]] = {}
    daemon = Daemon(board)
    try:
        for mode in ("move", "inplace"):
            results[f"plotboard/{mode}"] = latency_samples(
                run, root / "data", root / "public", names, mode, count,
                lambda png: wait_quiet([png], 0.3))
    finally:
        daemon.stop()
    for mode, trigger in (("move", "move"), ("inplace", "change")):
        durations = re.findall(rf"rendered c\d+ trigger={trigger} ([\d.]+)ms", daemon.log_path.read_text())
        renders[mode] = [float(d) for d in durations[-count:]]
    # The same with the board defaults' hidpi = true: every render also draws and encodes @2x.
    hroot = run.folder("latency-hidpi")
    hboard = make_board(hroot, 10, hidpi=True)
    subprocess.run(plotboard("build", "-c", str(hboard)), env=env(), check=True, capture_output=True)
    daemon = Daemon(hboard)
    try:
        results["plotboard/move-hidpi"] = latency_samples(
            run, hroot / "data", hroot / "public", names, "move", count, lambda png: wait_quiet([png], 0.3))
    finally:
        daemon.stop()
    renders["move-hidpi"] = [float(d) for d in re.findall(r"rendered c\d+ trigger=move ([\d.]+)ms",
                                                           daemon.log_path.read_text())[-count:]]

    # Baseline (b): watchmedo runs the plot script on every matching event of the data folder.
    out = root / "baseline"
    out.mkdir()
    watchmedo = Path(PY).with_name("watchmedo")
    command = f'{PY} {BENCH / "baseline_plot.py"} "${{watch_src_path}}" "${{watch_dest_path}}" {out}'
    log = open(root / "watchmedo.log", "w")
    proc = subprocess.Popen([str(watchmedo), "shell-command", "--patterns=**/*.csv", "--ignore-directories",
                             f"--command={command}", str(root / "data")],
                            env=env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # watchmedo prints nothing when its observer is up; give it a moment
        watcher = psutil.Process(proc.pid)

        def idle(png: Path) -> None:
            wait_for(lambda: not watcher.children(recursive=True), 30, "the plot scripts to finish")
            wait_quiet([png], 0.1)

        for name in names:  # every baseline image exists before the first sample
            write_csv_move(root / "data" / f"{name}.csv", reference.csv_text(1))
            idle(out / f"{name}.png")
            wait_for(lambda n=name: complete_png(out / f"{n}.png"), 30, f"baseline {name}.png")
        for mode in ("move", "inplace"):
            results[f"baseline/{mode}"] = latency_samples(run, root / "data", out, names, mode, count, idle)
    finally:
        stop_process(proc, 10)
        log.close()
    run.raw["latency"] = {**results, "render_ms": renders}

    def inside(mode: str) -> str:
        ms = statistics.median(renders[mode]) if renders[mode] else float("nan")
        return f"render in the worker {ms:.0f} ms of it (median)"

    pm, bm = stats(results["plotboard/move"]), stats(results["baseline/move"])
    pi, bi = stats(results["plotboard/inplace"]), stats(results["baseline/inplace"])
    ratio = bm["median"] / pm["median"]
    run.row("latency", "change -> new complete PNG, producer renames into place", pm, bm,
            "(b) watchmedo shell-command", "ms", ratio, "p50 <= 100, p95 <= 200 ms, >= 5x (b)",
            pm["median"] <= 100 and pm["p95"] <= 200 and ratio >= 5, note=inside("move"))
    ph = stats(results["plotboard/move-hidpi"])
    run.row("latency", "  the same, hidpi = true (1x + @2x PNG per render, the default)", ph, bm,
            "(b)", "ms", bm["median"] / ph["median"], "", None, note=inside("move-hidpi"))
    run.row("latency", "change -> new PNG, producer writes in place", pi, bi,
            "(b) watchmedo shell-command", "ms", bi["median"] / pi["median"], "p50 <= 200 + 100 ms",
            pi["median"] <= 300, note="debounce window 200 ms; " + inside("inplace"))


@benchmark
def bench_build(run: Run) -> None:
    """Full build of 100 charts from cold: `plotboard build` vs the cron-style pyplot script (a)."""
    charts = 100
    root = run.folder("build")
    board = make_board(root, charts)
    pb, base, phases, caps = [], [], [], []
    for _ in range(run.n(5, 1)):  # alternating pairs: (a)'s time varied by half between runs here
        caps.append(capacity())
        fresh(board)
        wall_start = time.time()
        elapsed, log = timed_run(plotboard("build", "-c", str(board)))
        pb.append(elapsed)
        stamps = [log_time(line) for line in log.splitlines() if " rendered c" in line]
        if stamps:  # where the wall time goes: start-up, rendering, wind-down
            phases.append({"to_first_publish_s": min(stamps) - wall_start, "renders_s": max(stamps) - min(stamps),
                           "after_last_publish_s": wall_start + elapsed - max(stamps)})
        shutil.rmtree(root / "baseline", ignore_errors=True)
        base.append(timed([PY, str(BENCH / "baseline_cron.py"), str(root / "data"), str(root / "baseline")]))
    run.raw["build"] = {"plotboard_s": pb, "baseline_s": base, "plotboard_phases": phases, "capacity": caps}
    p, b = stats([charts / s for s in pb]), stats([charts / s for s in base])
    ratio = p["median"] / b["median"]
    run.row("build", f"full build of {charts} charts from cold, whole process", p, b,
            "(a) cron-style pyplot script", "charts/s", ratio, ">= 1.7x (a)", ratio >= 1.7,
            note=f"cores' worth free {statistics.median(caps):.2f}; "
                 f"median of the pairs' ratios {statistics.median(theirs / ours for ours, theirs in zip(pb, base)):.2f}x; "
                 f"wall s: plotboard {statistics.median(pb):.2f}, (a) {statistics.median(base):.2f}; plotboard: "
                 + ", ".join(f"{k[:-2].replace('_', ' ')} {statistics.median(p[k] for p in phases):.2f} s"
                             for k in (phases[0] if phases else {})))


@benchmark
def bench_noop(run: Run) -> None:
    """`plotboard build` with nothing changed, whole process, 100 and 1,000 charts."""
    repeat = run.n(15, 5)
    floor = [timed([PY, "-c", "pass"]) * 1000 for _ in range(repeat)]
    run.row("noop", "floor: `python -c pass`, whole process", stats(floor), unit="ms")
    run.raw["noop"] = {"python_floor_ms": floor}
    for charts, limit in ((100, 300), (1000, 1000)):
        root = run.folder(f"noop{charts}")
        board = make_board(root, charts)
        timed(plotboard("build", "-c", str(board)))
        times = []
        for _ in range(repeat):
            elapsed, log = timed_run(plotboard("build", "-c", str(board)))
            if not re.search(r"build: 0 rendered, 0 failed", log):
                raise RuntimeError(f"a build with nothing changed rendered:\n{log[-2000:]}")
            times.append(elapsed * 1000)
        baseline = None
        if charts == 100 and run.raw.get("build"):
            baseline = stats([s * 1000 for s in run.raw["build"]["baseline_s"]])
        run.raw["noop"][f"{charts}_ms"] = times
        s = stats(times)
        run.row("noop", f"`plotboard build`, nothing changed, {charts} charts", s, baseline,
                "(a) re-renders everything" if baseline else "", "ms",
                baseline["median"] / s["median"] if baseline else None, f"<= {limit} ms",
                s["median"] <= limit)


@benchmark
def bench_throughput(run: Run) -> None:
    """Daemon steady state with many charts changing vs workers x the bare in-process rate."""
    charts = 100
    root = run.folder("throughput")
    board = make_board(root, charts)
    subprocess.run(plotboard("build", "-c", str(board)), env=env(), check=True, capture_output=True)
    data, out = root / "data", root / "public"
    names = [f"c{i:04d}" for i in range(charts)]
    rates, bare, parallel, caps, busy, worker_ms = [], [], [], [], [], []
    daemon = Daemon(board)
    try:
        for r in range(run.n(4, 2)):
            caps.append(capacity())
            bare.extend(run.bare(run.n(20, 8))["render_ms"])
            parallel.append(run.bare_parallel(run.n(20, 8)))
            texts = [reference.csv_text(20_000 + r * charts + i) for i in range(charts)]
            for name, text in zip(names, texts):
                (data / f".{name}.csv.tmp").write_text(text)
            befores = [signature(out / f"{n}.png") for n in names]
            log_offset = len(daemon.log_path.read_text())
            started = time.perf_counter()
            for name in names:
                os.replace(data / f".{name}.csv.tmp", data / f"{name}.csv")
            pending = set(range(charts))
            while pending:
                for i in list(pending):
                    if signature(out / f"{names[i]}.png") != befores[i]:
                        pending.discard(i)
                if time.perf_counter() - started > 300:
                    raise RuntimeError("the burst did not finish in 300 s")
                time.sleep(0.02)  # light polling: the workers need the cores
            elapsed = time.perf_counter() - started
            wait_quiet([out / "status.json"], 1.5)
            inside = [float(ms) for ms in re.findall(r"rendered c\d+ trigger=\w+ ([\d.]+)ms",
                                                     daemon.log_path.read_text()[log_offset:])][:charts]
            if r:  # the first burst warms the workers
                rates.append(charts / elapsed)
                # The share of the burst's worker time spent inside render(): what the daemon's own
                # dispatching and publishing cost, whatever the machine's speed at that moment.
                busy.append(sum(inside) / (WORKERS * elapsed * 1000))
                worker_ms.extend(inside)
    finally:
        daemon.stop()
    run.raw["throughput"] = {"daemon_renders_per_s": rates, "bare_render_ms": bare,
                             "bare_parallel_renders_per_s": parallel, "capacity": caps,
                             "worker_busy_share": busy, "worker_render_ms": worker_ms}
    b = stats(bare)
    bare_rate = 1000 / b["median"]
    p = stats(rates)
    need = 0.85 * WORKERS * bare_rate
    run.row("throughput", f"daemon steady state, {charts} charts changed at once", p,
            {"median": WORKERS * bare_rate}, f"{WORKERS} workers x bare savefig rate ({bare_rate:.1f}/s)",
            "renders/s", p["median"] / (WORKERS * bare_rate), f">= 85% ({need:.1f}/s)", p["median"] >= need,
            note=f"cores' worth free {statistics.median(caps):.2f}; bare render median {b['median']:.1f} ms, "
                 f"measured between bursts; "
                 f"{WORKERS} bare processes at once: {statistics.median(parallel):.1f}/s, "
                 f"daemon = {p['median'] / statistics.median(parallel):.0%} of that; workers busy rendering "
                 f"{statistics.median(busy):.0%} of the burst, {statistics.median(worker_ms):.0f} ms a render")


@benchmark
def bench_memory(run: Run) -> None:
    """RSS of daemon + forkserver + workers after many renders."""
    low, high = (500, 5000) if not run.quick else (200, 1000)
    charts = 20
    root = run.folder("memory")
    board = make_board(root, charts)
    subprocess.run(plotboard("build", "-c", str(board)), env=env(), check=True, capture_output=True)
    data = root / "data"
    versions = root / "versions"
    versions.mkdir()
    for i in range(charts):
        for v in range(2):
            (versions / f"c{i:04d}.{v}.csv").write_text(reference.csv_text(30_000 + 2 * i + v))
    base = sum(json.loads((root / "public" / "status.json").read_text())["charts"][i]["renders"]
               for i in range(charts))
    samples: list[dict[str, float]] = []
    daemon = Daemon(board)
    try:
        flip = 0
        started = time.monotonic()
        last_sample = 0.0
        renders = 0
        while renders < high:
            flip ^= 1
            for i in range(charts):  # move a prepared version into place: a hard link, renamed
                tmp = data / f".c{i:04d}.csv.tmp"
                os.link(versions / f"c{i:04d}.{flip}.csv", tmp)
                os.replace(tmp, data / f"c{i:04d}.csv")
            time.sleep(0.05)
            if time.monotonic() - last_sample >= 0.5:
                last_sample = time.monotonic()
                try:
                    status = json.loads((root / "public" / "status.json").read_text())
                except (OSError, ValueError):
                    continue
                renders = sum(c["renders"] for c in status["charts"]) - base
                samples.append({"renders": renders, "t": last_sample - started, **daemon.tree_memory()})
            if time.monotonic() - started > 1800:
                raise RuntimeError("memory run took over 30 minutes")
    finally:
        daemon.stop()
    run.raw["memory"] = samples

    def window(lo: int, hi: int) -> float:
        return statistics.median([s["rss_mib"] for s in samples if lo <= s["renders"] <= hi] or [float("nan")])

    at_low = next(s for s in samples if s["renders"] >= low)
    at_high = samples[-1]
    # Workers are recycled every 100 renders, so a single sample lands anywhere on a sawtooth:
    # the target is judged on the median of the samples over a window after each count.
    span = 250  # renders: more than one recycling cycle of every worker (100 tasks each)
    wl, wh = window(low, low + span), window(high - span, high)
    ratio = wh / wl
    rate = at_high["renders"] / at_high["t"]
    peaks = [max((x["rss_mib"] for x in samples if lo <= x["renders"] <= hi), default=float("nan"))
             for lo, hi in ((low, low + span), (high - span, high))]
    run.row("memory", f"RSS daemon + forkserver + workers, median over renders {high - span}-{high} "
                      f"vs {low}-{low + span}", {"median": wh}, {"median": wl}, f"after {low}", "MiB", ratio,
            "within 10%", abs(ratio - 1) <= 0.10,
            note=f"peaks in those windows {peaks[1]:.0f} vs {peaks[0]:.0f} MiB; "
                 f"single samples after {at_low['renders']} / {at_high['renders']} renders: {at_low['rss_mib']:.0f} / "
                 f"{at_high['rss_mib']:.0f} MiB; PSS {at_low['pss_mib']:.0f} -> {at_high['pss_mib']:.0f} MiB; "
                 f"{rate:.1f} renders/s")


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout

    def ms(text: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    figures = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        figures[f"p{pct}_ms"] = ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    figures["errors"] = errors.group(0) if errors else ""
    figures["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return figures


@benchmark
def bench_serve(run: Run) -> None:
    """The board's image: nginx serving the static PNG vs Flask + gunicorn rendering per request (c)."""
    seconds, connections = run.n(10, 3), 4
    root = run.folder("serve")
    root.chmod(0o755)
    board = make_board(root, 1)
    subprocess.run(plotboard("build", "-c", str(board)), env=env(), check=True, capture_output=True)
    for p in (run.work, root):
        p.chmod(0o755)
    results = {}
    with Nginx(root / "public", root / "nginx", workers=WORKERS, access_log=False) as nginx:
        url = f"{nginx.url}c0000.png"
        subprocess.run(["wrk", "-t1", "-c1", "-d1s", url], capture_output=True, check=True)
        results["nginx"] = wrk(url, seconds, connections)
    gport = free_port()
    gunicorn = subprocess.Popen([PY, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{gport}",
                                 "--chdir", str(BENCH), "baseline_flask:app"],
                                env={**env(), "BENCH_CSV": str(root / "data" / "c0000.csv")},
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: accepts(gport), 30, "gunicorn")
        url = f"http://127.0.0.1:{gport}/chart.png"
        subprocess.run(["wrk", "-t1", "-c2", "-d2s", url], capture_output=True, check=True)  # warm both workers
        results["flask"] = wrk(url, seconds, connections)
    finally:
        stop_process(gunicorn, 30)
    run.raw["serve"] = results
    n, f = results["nginx"], results["flask"]
    run.row("serve", f"serving the image: requests/s ({connections} connections, {seconds} s, wrk on 127.0.0.1)",
            {"median": n["requests_per_s"]}, {"median": f["requests_per_s"]},
            f"(c) Flask + gunicorn -w {WORKERS}, BytesIO + send_file", "req/s",
            n["requests_per_s"] / f["requests_per_s"], "report", None,
            note=f"{n['requests']} vs {f['requests']} requests {n['errors']} {f['errors']}".strip())
    run.row("serve", "serving the image: p99 latency", {"median": n["p99_ms"]}, {"median": f["p99_ms"]},
            "(c)", "ms", f["p99_ms"] / n["p99_ms"], "report", None,
            note=f"p50 {n['p50_ms']:.2f} vs {f['p50_ms']:.1f} ms")


@benchmark
def bench_page(run: Run) -> None:
    """Page weight of a 20-chart board: HTML + CSS + JS, uncompressed (and gzip -6)."""
    import gzip

    root = run.folder("page")
    board = make_board(root, 20, hidpi=True)
    subprocess.run(plotboard("build", "-c", str(board)), env=env(), check=True, capture_output=True)
    out = root / "public"
    # What index.html loads, as tests/test_page.py counts it: a feature's own script (history.js,
    # zoom.js, ...) is named only on a board that uses the feature.
    named = sorted(set(re.findall(r'(?:src|href)="(static/[^"?]+)\?v=', (out / "index.html").read_text())))
    files = [out / "index.html", *(out / n for n in named if n.endswith((".css", ".js")))]
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in files}
    total = sum(sizes.values())
    zipped = sum(len(gzip.compress(p.read_bytes(), 6)) for p in files)
    status = (out / "status.json").stat().st_size
    others = sorted(p.name for p in (out / "static").iterdir() if p.suffix not in (".css", ".js"))
    run.raw["page"] = {"sizes": sizes, "gzip_total": zipped, "status_json": status, "other_static": others}
    run.row("page", "page weight, 20-chart board: HTML + CSS + JS", {"median": total / 1000}, unit="kB",
            # The budget tests/test_page.py holds (30 KB until groups, the filter, kiosk rotation and
            # time windows came): 45 KiB as written, 12 KiB gzipped, as nginx sends it.
            target="<= 45 KiB, gzip <= 12 KiB", met=total <= 45 * 1024 and zipped <= 12 * 1024,
            note=f"{', '.join(f'{k} {v / 1000:.1f}' for k, v in sizes.items())}; gzip {zipped / 1000:.1f} kB; "
                 f"status.json {status / 1000:.1f} kB")


@benchmark
def bench_scale(run: Run) -> None:
    """Fleet boards (issue 13): `run` vs `build` at 1k/3k/10k tiny charts in 100 groups, idle CPU, no-op build; the page in Chromium behind nginx; glass to glass (bench/fleet.py; only when named)."""
    fleet.scale(run, sys.modules[__name__])


@benchmark
def bench_push(run: Run) -> None:
    """Push (issue 27): glass to glass through nginx + Chromium with /events vs polling every second, an idle viewer's bytes, 200 open streams' CPU (bench/push.py)."""
    push.push(run, sys.modules[__name__])


# -- output ----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        if "p95" in value:
            return f"{value['median']:.4g} (p95 {value['p95']:.4g}, n={value['n']})"
        return f"{value['median']:.4g}"
    return str(value)


def table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    head = ["figure", "unit", "plotboard", "baseline", "ratio", "target", "met"]
    lines = []
    for r in rows:
        base = fmt(r["baseline"])
        if r["baseline_name"] and r["baseline"] is not None:
            base = f"{base} {r['baseline_name']}"
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
        cells = [r["figure"] + (f" [{r['note']}]" if r["note"] else ""), r["unit"], fmt(r["plotboard"]), base,
                 ratio, r["target"], met]
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in lines]
        return "\n".join(out)
    return "\n".join("  ".join(c for c in cells if c) for cells in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="plotboard benchmarks (issue 5)")
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--sizes", metavar="N,N,...", type=lambda v: [int(x) for x in v.split(",") if x.strip()],
                    help="board sizes for `scale` (default 1000,3000,10000; --quick 1000)")
    ap.add_argument("--src", type=Path, metavar="DIR",
                    help="run plotboard from this source tree instead (to measure a change before it lands)")
    ap.add_argument("--layout", choices=["constrained", "compressed", "tight", "none"],
                    help="the reference boards' layout (default: plotboard's, constrained); the baselines keep theirs")
    args = ap.parse_args()
    if args.layout:
        global LAYOUT
        LAYOUT = args.layout
    if args.src:
        global SOURCE
        SOURCE = args.src.resolve()
        if not (SOURCE / "renderer" / "__init__.py").is_file():
            ap.error(f"--src: no renderer package in {SOURCE}")
    if args.list:
        for name, func in BENCHMARKS.items():
            print(f"{name:<11} {func.__doc__}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    names = args.names or [n for n in BENCHMARKS if n not in OPT_IN]
    info = machine()
    if SOURCE != REPO:
        print(f"plotboard from {SOURCE}")
    if LAYOUT:
        print(f"the reference boards' layout: {LAYOUT}")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    work = Path(tempfile.mkdtemp(prefix="plotboard-bench-"))
    work.chmod(0o755)
    run = Run(args.quick, work)
    run.sizes = args.sizes
    started = time.time()
    # Warm-up: matplotlib's font cache, and bytecode for everything the measured processes import.
    subprocess.run([PY, "-c", "import matplotlib.pyplot, flask, renderer.cli, renderer.build, renderer.daemon.loop"],
                   env=env(), check=True)
    try:
        for name in names:
            before = loadavg()
            cap = capacity()
            t0 = time.perf_counter()
            print(f"== {name} (load average {before[0]:.2f}, cores' worth free {cap:.2f}) ...", flush=True)
            first = len(run.rows)
            BENCHMARKS[name](run)
            run.loads[name] = {"before": before, "after": loadavg(), "seconds": round(time.perf_counter() - t0, 1),
                               "capacity_before": cap}
            print(table(run.rows[first:]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"scratch folder kept: {work}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    result = {"started": stamp, "quick": args.quick, "source": str(SOURCE), "layout": LAYOUT, "machine": info,
              "loads": run.loads,
              "rows": run.rows, "raw": run.raw}
    path = RESULTS / f"{stamp}{'-quick' if args.quick else ''}{'-src' if SOURCE != REPO else ''}.json"
    path.write_text(json.dumps(result, indent=1))
    (RESULTS / f"latest{'-src' if SOURCE != REPO else ''}.md").write_text(table(run.rows, markdown=True) + "\n")
    print("\n" + table(run.rows, markdown=True))
    print("\nload average before->after, cores' worth free before, seconds per benchmark: "
          + "; ".join(f"{k} {v['before'][0]}->{v['after'][0]}, {v['capacity_before']}, {v['seconds']} s"
                                                         for k, v in run.loads.items()))
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
