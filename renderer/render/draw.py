"""The render step: (chart spec, input paths) to image bytes, in whatever process runs it; it keeps
nothing between renders but a retained plot's figure (renderer.render.retained), which draws the
same pixels, so any worker, local or remote, draws the same image from the same job.

This module imports matplotlib, so only worker processes import it; the daemon and a
`build` with nothing to do never pay for matplotlib.
"""

from __future__ import annotations

import hashlib
import io
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.style  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from renderer.render import modules as boardmods  # noqa: E402
from renderer.render import png  # noqa: E402
from renderer.render import retained  # noqa: E402
from renderer.render.axes import axes_of  # noqa: E402
from renderer.render.fonts import WarmRenderer  # noqa: E402
from renderer.render.jobs import RenderJob, RenderOutput  # noqa: E402
from renderer.render.plotfunc import load_plot_function  # noqa: E402

THEME_STYLES = {
    "light": {"figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white"},
    # The page's dark card colour, so a dark chart sits on its card without a seam.
    "dark": ["dark_background", {"figure.facecolor": "#161b22", "axes.facecolor": "#161b22",
                                 "savefig.facecolor": "#161b22", "grid.color": "#30363d"}],
}
BASE_RC = {"svg.hashsalt": "plotboard", "path.simplify": True}


# Agg renderers kept between renders, by (width, height, dpi), most recently used last.
_renderers: dict[tuple[int, int, float], WarmRenderer] = {}
KEPT_RENDERERS = 4


class WarmCanvas(FigureCanvasAgg):
    """The Agg canvas every chart is drawn on, tuned for a worker that draws many figures.

    - Its Agg renderers outlive the figure: matplotlib caches text measurements per renderer,
      so a fresh renderer for every figure measures every label again.
    - They are renderer.render.fonts' WarmRenderer, which keeps each font's line metrics.
    - PNGs are encoded by renderer.render.png: RGB when every pixel is opaque, one fixed filter.
    """

    def get_renderer(self) -> WarmRenderer:
        w, h = self.get_width_height(physical=True)
        key = (w, h, self.figure.dpi)
        renderer = _renderers.pop(key, None)
        if renderer is None:
            renderer = WarmRenderer(w, h, self.figure.dpi)
        _renderers[key] = renderer
        while len(_renderers) > KEPT_RENDERERS:
            del _renderers[next(iter(_renderers))]
        self.renderer, self._lastKey = renderer, key
        return renderer

    def print_png(self, filename_or_obj, *, metadata=None, pil_kwargs=None, **_figure_kwargs) -> None:
        """Draw, then write the PNG with renderer.render.png: what matplotlib writes, encoded faster.

        savefig hands a print method from outside matplotlib its dpi, facecolor and the like
        too; by now they are applied to the figure, as matplotlib's own print_png assumes.
        """
        FigureCanvasAgg.draw(self)
        text = {"Software": f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/",
                **(metadata or {})}
        data = png.encode(np.asarray(self.buffer_rgba()),
                          level=(pil_kwargs or {}).get("compress_level", 6), dpi=self.figure.dpi,
                          text={k: v for k, v in text.items() if v is not None})
        if hasattr(filename_or_obj, "write"):
            filename_or_obj.write(data)
        else:
            Path(filename_or_obj).write_bytes(data)


def render(job: RenderJob) -> RenderOutput:
    """Draw the chart and return its files' bytes. Raises whatever the plot function raises."""
    started = time.perf_counter()
    function = load_plot_function(job)
    with matplotlib.rc_context(BASE_RC), matplotlib.style.context(THEME_STYLES[job.theme]):
        before = _pyplot_figures()
        kwargs = dict(job.params)
        if job.window is not None:
            kwargs.update(window=job.window, window_name=job.window_name)
        if job.zoom:
            kwargs["end"] = job.end if job.end is not None else time.time()
        fig, kept = retained.draw(job, function, [Path(p) for p in job.inputs], kwargs, lambda: _new_figure(job))
        try:
            files = _finish(job, fig, before)
        except BaseException:
            if kept is not None:
                retained.discard(kept)
            raise
        if kept is not None:
            retained.keep(job, kept, boardmods.in_use(kept.used))
    own = dict(files)
    for alias in job.aliases:  # the first window's NAME.WINDOW.png: the same bytes as NAME.png
        files.update({alias + name[len(job.name):]: data for name, data in own.items()})
    digest = hashlib.sha256(files[f"{job.name}.png"]).hexdigest()[:16]
    return RenderOutput(job.name, files, digest, (time.perf_counter() - started) * 1000, axes=axes_of(fig))


def _new_figure(job: RenderJob) -> Figure:
    fig = Figure(figsize=job.size, dpi=job.dpi, layout=None if job.layout == "none" else job.layout)
    WarmCanvas(fig)
    return fig


def _finish(job: RenderJob, fig: Figure, before: set[int]) -> dict[str, bytes]:
    """The contract's checks, the layout, then the chart's files."""
    _check_drawn(fig, before)
    _fix_layout(fig)
    files: dict[str, bytes] = {}
    png = {"compress_level": job.png_compression}
    files[f"{job.name}.png"] = _save(fig, "png", job.dpi * job.scale, pil_kwargs=png)
    if job.hidpi:
        files[f"{job.name}@2x.png"] = _save(fig, "png", job.dpi * 2, pil_kwargs=png)
    if "svg" in job.formats:
        files[f"{job.name}.svg"] = _save(fig, "svg", job.dpi, metadata={"Date": None})
    return files


class PlotContractError(Exception):
    """The plot function broke the plot contract: it drew nothing, or drew with pyplot."""


def _pyplot_figures() -> set[int]:
    """The numbers of pyplot's open figures; nothing (and no import) when no plot imported pyplot."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


def _check_drawn(fig: Figure, before: set[int]) -> None:
    """Fail a render that left figures open in pyplot (closing them: they would pile up in
    the worker) or drew nothing on `fig`; costs about a microsecond when all is well."""
    created = sorted(_pyplot_figures() - before)
    if created:
        sys.modules["matplotlib.pyplot"].close("all")
        which = ", ".join(map(str, created))
        raise PlotContractError(
            f"the plot drew on pyplot's figure {which} (plt.plot, plt.gcf(), plt.subplots() ...) "
            "instead of the figure it was given; draw on `fig` (ax = fig.add_subplot()) and do not use pyplot")
    if len(fig.get_children()) <= 1:  # the figure's own background patch
        raise PlotContractError("the plot drew nothing on the figure it was given (no axes, no artists); "
                                "draw on `fig`, for example ax = fig.add_subplot(); ax.plot(...)")


def _fix_layout(fig: Figure) -> None:
    """Run the figure's layout engine once, then keep what it decided for every image saved.

    matplotlib runs a layout engine at each draw, and savefig draws once more beforehand
    (without rendering) for it: two layouts for each image saved. Once is enough, since
    positions are fractions of the figure (the same at any dpi); so the @2x image is the 1x
    image's layout at twice the pixels (BENCHMARKS.md, "Constrained layout").
    """
    engine = fig.get_layout_engine()
    if engine is None:
        return
    engine.execute(fig)
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # no engine at all: savefig then draws once


def _save(fig: Figure, fmt: str, dpi: int, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, **kwargs)
    return buf.getvalue()
