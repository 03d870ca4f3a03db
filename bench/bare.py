"""In-process figures for the reference chart, run in a fresh process by bench/run.py.

`python bench/bare.py savefig CSV N`   N renders (read CSV, plot on a bare Figure, savefig PNG
                                       to memory) one after another: per-render ms and phases.
`python bench/bare.py png CSV N`       PNG encode cost and size at compress levels 0-9, for the
                                       1x (800x400) and 2x (1600x800) image, Pillow's encoder
                                       (what savefig uses) and plotboard's renderer.render.png.
`python bench/bare.py render CSV N`    plotboard's render() against a bare Figure + savefig,
                                       interleaved: ms per render; and with layout = "none"
                                       (no constrained layout), what the default layout costs,
                                       for the 1x image alone and with hidpi (1x + @2x).
Prints one JSON object on stdout.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import reference  # noqa: E402

LEVELS = (0, 1, 3, 6, 9)


def savefig_figures(csv: Path, n: int) -> dict:
    """Whole renders plus where the time goes: load CSV, plot calls, Agg draw, PNG encode+write."""
    total, load, plot, draw, save = [], [], [], [], []
    for i in range(n + 1):
        t0 = time.perf_counter()
        fig = Figure(figsize=reference.SIZE, dpi=reference.DPI)
        reference.reference(fig, [csv])
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        t1 = time.perf_counter()
        if i:  # the first render in a process pays one-off costs (fonts, caches)
            total.append((t1 - t0) * 1000)
        # The same work again, one phase at a time.
        t0 = time.perf_counter()
        t, v = reference.load(csv)
        t1 = time.perf_counter()
        fig = Figure(figsize=reference.SIZE, dpi=reference.DPI)
        ax = fig.add_subplot()
        ax.plot(t, v, linewidth=0.8, color="tab:blue")
        ax.set_title("Reference chart")
        ax.set_xlabel("t")
        ax.set_ylabel("value")
        ax.grid(True)
        t2 = time.perf_counter()
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        t3 = time.perf_counter()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # draws again, then encodes
        t4 = time.perf_counter()
        if i:
            load.append((t1 - t0) * 1000)
            plot.append((t2 - t1) * 1000)
            draw.append((t3 - t2) * 1000)
            save.append((t4 - t3) * 1000)
    return {"render_ms": total, "load_ms": load, "plot_ms": plot, "draw_ms": draw,
            "savefig_ms": save, "png_bytes": len(buf.getvalue())}


def png_figures(csv: Path, n: int) -> dict:
    """Encode ms and file bytes per compress level: Pillow (what savefig uses) and renderer.render.png."""
    from PIL import Image
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from renderer.render import png

    out: dict = {}
    for scale in (1, 2):
        fig = Figure(figsize=reference.SIZE, dpi=reference.DPI * scale)
        reference.reference(fig, [csv])
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        rgba = canvas.buffer_rgba()
        image = Image.frombuffer("RGBA", canvas.get_width_height(), rgba, "raw", "RGBA", 0, 1)
        pixels = np.asarray(rgba)
        times: dict[tuple[str, int], list[float]] = {}
        sizes: dict[tuple[str, int], int] = {}
        for _ in range(n):  # levels interleaved, so a change in the machine's load hits all alike
            for level in LEVELS:
                buf = io.BytesIO()
                t0 = time.perf_counter()
                image.save(buf, format="png", compress_level=level)
                t1 = time.perf_counter()
                data = png.encode(pixels, level=level, dpi=reference.DPI * scale)
                t2 = time.perf_counter()
                times.setdefault(("pillow", level), []).append((t1 - t0) * 1000)
                times.setdefault(("plotboard", level), []).append((t2 - t1) * 1000)
                sizes[("pillow", level)], sizes[("plotboard", level)] = len(buf.getvalue()), len(data)
        for (encoder, level), samples in times.items():
            out[f"{scale}x/{level}/{encoder}"] = {"encode_ms": samples, "bytes": sizes[(encoder, level)]}
    return out


def render_figures(csv: Path, n: int) -> dict:
    """plotboard's render() against the bare idiom (fresh Figure, savefig), interleaved, same chart."""
    import matplotlib.style

    from renderer.render.jobs import RenderJob
    from renderer.render.draw import BASE_RC, THEME_STYLES, render

    def job(level: int, layout: str = "constrained", hidpi: bool = False) -> RenderJob:
        return RenderJob(name="ref", plot="reference:reference", plot_file=str(Path(reference.__file__)),
                         root=str(Path(reference.__file__).parent), inputs=(str(csv),), size=reference.SIZE,
                         dpi=reference.DPI, hidpi=hidpi, formats=("png",), png_compression=level,
                         theme="light", layout=layout)

    def bare() -> bytes:
        with matplotlib.rc_context(BASE_RC), matplotlib.style.context(THEME_STYLES["light"]):
            fig = Figure(figsize=reference.SIZE, dpi=reference.DPI)
            reference.reference(fig, [csv])
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        return buf.getvalue()

    runs = {"bare_savefig_ms": bare, "plotboard_ms": lambda: render(job(3)),
            "plotboard_level6_ms": lambda: render(job(6)),
            "plotboard_layout_none_ms": lambda: render(job(3, "none")),
            "plotboard_hidpi_ms": lambda: render(job(3, hidpi=True)),
            "plotboard_hidpi_layout_none_ms": lambda: render(job(3, "none", hidpi=True))}
    out: dict = {name: [] for name in runs}
    for i in range(n + 1):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            if i:  # the first of each pays one-off costs
                out[name].append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    mode, csv, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    figures = {"savefig": savefig_figures, "png": png_figures, "render": render_figures}[mode](csv, n)
    json.dump(figures, sys.stdout)


if __name__ == "__main__":
    main()
