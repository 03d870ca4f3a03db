"""Retained figures (issue 27): the reference chart as a retained plot against a bare Figure +
savefig, interleaved in one process, every render with new data (two CSVs taken in turn).

`python bench/retained.py [--rounds N] [--points 1000,10000,100000] [--daemon N] [--out FILE]`

Each round renders once with each of, in turn:

- bare:              a fresh `Figure` (no layout engine), the reference plot, `savefig` to PNG
                     (the bare idiom every plotboard figure is measured against);
- bare_constrained:  the same with `Figure(layout="constrained")`, what plotboard's default asks;
- bare_retained:     one `Figure` kept: `set_data`, `relim`, `autoscale_view`, `savefig` (no
                     layout engine): the floor a retained figure can reach in matplotlib;
- fresh, fresh_none: plotboard's in-worker render (renderer.render.worker.run_job: the module
                     check, the memory limit, the render, the PNG) of the ordinary reference
                     plot, with the default layout and with `layout = "none"`;
- retained, retained_none: the same render of the reference chart written as a retained plot.

With `--daemon N` (N samples, 0: none), also the daemon's latency (`plotboard run`, 10 reference
charts, 2 workers; a producer's CSV renamed into place -> a new complete PNG, as bench/run.py's
latency benchmark), with the ordinary reference plot and with the retained one: first 20 changes
unmeasured, so that every chart has been drawn once in each worker.

Before timing, the retained plot's image is checked to be byte for byte the fresh one's for the
same data. Prints the machine, medians, p95, the ratio to `bare` and the ratio like for like (to
`bare_constrained` for the variants with constrained layout, to `bare` for those without a layout
engine); writes the samples as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import reference  # noqa: E402


def reference_retained(fig, inputs, **params):
    """The reference chart (bench/reference.py) as a retained plot: drawn once, then updated."""
    ax = fig.add_subplot()
    (line,) = ax.plot([], [], linewidth=0.8, color=params.get("color", "tab:blue"))
    ax.set_title(params.get("title", "Reference chart"))
    ax.set_xlabel("t")
    ax.set_ylabel("value")
    ax.grid(True)
    while True:
        t, v = reference.load(inputs[0])
        line.set_data(t, v)
        ax.relim()
        ax.autoscale_view()
        inputs, params = yield


def variants(csvs: list[Path]):
    import matplotlib
    import matplotlib.style
    from matplotlib.figure import Figure

    from renderer.render.draw import BASE_RC, THEME_STYLES
    from renderer.render.jobs import RenderJob, RenderOutput
    from renderer.render.worker import run_job

    def job(name: str, plot: str, csv: Path, layout: str) -> RenderJob:
        return RenderJob(name=name, plot=plot, plot_file=str(BENCH / (plot.split(":")[0] + ".py")), root=str(BENCH),
                         inputs=(str(csv),), size=reference.SIZE, dpi=reference.DPI, hidpi=False, formats=("png",),
                         png_compression=3, theme="light", layout=layout, max_memory=2**30)

    def plotboard(name: str, plot: str, layout: str):
        def render(csv: Path) -> bytes:
            outcome = run_job(job(name, plot, csv, layout))
            assert isinstance(outcome, RenderOutput), outcome
            return outcome.files[f"{name}.png"]
        return render

    def bare(layout: str | None):
        def render(csv: Path) -> bytes:
            with matplotlib.rc_context(BASE_RC), matplotlib.style.context(THEME_STYLES["light"]):
                fig = Figure(figsize=reference.SIZE, dpi=reference.DPI, layout=layout)
                reference.reference(fig, [csv])
                buf = io.BytesIO()
                fig.savefig(buf, format="png")
            return buf.getvalue()
        return render

    kept: dict = {}

    def bare_retained(csv: Path) -> bytes:
        with matplotlib.rc_context(BASE_RC), matplotlib.style.context(THEME_STYLES["light"]):
            if not kept:
                fig = Figure(figsize=reference.SIZE, dpi=reference.DPI)
                generator = reference_retained(fig, [csv])
                next(generator)
                kept.update(fig=fig, generator=generator)
            else:
                kept["generator"].send(([csv], {}))
            buf = io.BytesIO()
            kept["fig"].savefig(buf, format="png")
        return buf.getvalue()

    return {
        "bare": bare(None), "bare_constrained": bare("constrained"), "bare_retained": bare_retained,
        "fresh": plotboard("fresh", "reference:reference", "constrained"),
        "fresh_none": plotboard("fresh_none", "reference:reference", "none"),
        "retained": plotboard("retained", "retained:reference_retained", "constrained"),
        "retained_none": plotboard("retained_none", "retained:reference_retained", "none"),
    }


# The bare idiom with the same layout as each variant: a render's ratio to it is like for like.
LIKE = {"bare": "bare", "bare_constrained": "bare_constrained", "bare_retained": "bare", "fresh": "bare_constrained",
        "fresh_none": "bare", "retained": "bare_constrained", "retained_none": "bare"}


def check_same_pixels(csvs: list[Path]) -> None:
    """A retained update's PNG is the fresh render's, byte for byte, for the same data."""
    from renderer.render.jobs import RenderJob
    from renderer.render.worker import run_job

    for layout in ("constrained", "none"):
        def job(name: str, plot: str, csv: Path) -> RenderJob:
            return RenderJob(name=name, plot=plot, plot_file=None, root=str(BENCH), inputs=(str(csv),),
                             size=reference.SIZE, dpi=reference.DPI, hidpi=False, formats=("png",),
                             png_compression=3, theme="light", layout=layout)
        run_job(job("check", "retained:reference_retained", csvs[0]))
        updated = run_job(job("check", "retained:reference_retained", csvs[1])).files["check.png"]
        fresh = run_job(job("check", "reference:reference", csvs[1])).files["check.png"]
        assert updated == fresh, f"layout {layout}: a retained update differs from a fresh render"


def daemon_latency(count: int, work: Path, harness) -> dict:
    import re
    import shutil
    import subprocess

    names = [f"c{i:04d}" for i in range(10)]
    out = {}
    for plot in ("reference:reference", "retained:reference_retained"):
        root = work / plot.split(":")[0]
        board = harness.make_board(root, 10)
        shutil.copy(BENCH / "retained.py", root / "retained.py")
        board.write_text(board.read_text().replace('plot = "reference:reference"', f'plot = "{plot}"'))
        subprocess.run(harness.plotboard("build", "-c", str(board)), env=harness.env(), check=True,
                       capture_output=True)
        daemon = harness.Daemon(board)
        load_before = harness.loadavg()
        try:
            def settle(png):
                return harness.wait_quiet([png], 0.3)
            harness.latency_samples(None, root / "data", root / "public", names, "move", 20, settle)
            samples = harness.latency_samples(None, root / "data", root / "public", names, "move", count, settle)
        finally:
            daemon.stop()
        renders = [float(d) for d in re.findall(r"rendered c\d+ trigger=move ([\d.]+)ms",
                                                  daemon.log_path.read_text())[-count:]]
        out[plot] = {"latency_ms": stats(samples), "render_ms": stats(renders), "latency_samples": samples,
                     "render_samples": renders, "load_before": load_before, "load_after": harness.loadavg()}
        print(f"daemon, {plot}: latency {out[plot]['latency_ms']}, render {out[plot]['render_ms']}, "
              f"load {load_before} -> {harness.loadavg()}", flush=True)
    return out


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered), 2), "p10": round(ordered[int(0.1 * len(ordered))], 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2), "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--points", default="1000,10000,100000")
    parser.add_argument("--daemon", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import run as harness  # bench/run.py: machine(), loadavg(), capacity()

    info = {"machine": harness.machine(), "cores_free_before": harness.capacity(), "results": {}}
    print(json.dumps(info["machine"]), flush=True)
    print(f"cores' worth free before: {info['cores_free_before']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for points in [int(p) for p in args.points.split(",") if p]:
            csvs = [Path(tmp) / f"ref-{points}-{seed}.csv" for seed in (1, 2)]
            for seed, csv in enumerate(csvs, 1):
                reference.write_csv(csv, seed, points)
            check_same_pixels(csvs)
            runs = variants(csvs)
            samples: dict[str, list[float]] = {name: [] for name in runs}
            load_before = harness.loadavg()
            for i in range(args.rounds + 1):
                csv = csvs[i % 2]
                for name, render in runs.items():
                    t0 = time.perf_counter()
                    render(csv)
                    if i:  # the first of each pays one-off costs (and draws the retained figures)
                        samples[name].append((time.perf_counter() - t0) * 1000)
            figures = {name: stats(values) for name, values in samples.items()}
            for name, figure in figures.items():
                figure["ratio_to_bare"] = round(figure["median"] / figures["bare"]["median"], 3)
                figure["ratio_to_like"] = round(figure["median"] / figures[LIKE[name]]["median"], 3)
            info["results"][points] = {"figures": figures, "samples": samples,
                                       "load_before": load_before, "load_after": harness.loadavg()}
            print(f"\n{points} points, load average {load_before} -> {harness.loadavg()}")
            print(f"{'variant':18} {'median ms':>10} {'p10 ms':>8} {'p95 ms':>8} {'x bare':>7} {'x like':>7}  like")
            for name, figure in figures.items():
                print(f"{name:18} {figure['median']:10.1f} {figure['p10']:8.1f} {figure['p95']:8.1f} "
                      f"{figure['ratio_to_bare']:7.3f} {figure['ratio_to_like']:7.3f}  {LIKE[name]}")
        if args.daemon:
            info["daemon"] = daemon_latency(args.daemon, Path(tmp), harness)
    out = args.out or BENCH / "results" / time.strftime("retained-%Y%m%d-%H%M%S.json", time.gmtime())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=1))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
