"""The render step: a pure function from (chart spec, input paths) to image bytes.

This module imports matplotlib, so only worker processes import it; the daemon and a
`build` with nothing to do never pay for matplotlib.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import sys
import time
import types
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.style  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from renderer.jobs import RenderJob, RenderOutput  # noqa: E402

THEME_STYLES = {
    "light": {"figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white"},
    # The page's dark card colour, so a dark chart sits on its card without a seam.
    "dark": ["dark_background", {"figure.facecolor": "#161b22", "axes.facecolor": "#161b22",
                                 "savefig.facecolor": "#161b22", "grid.color": "#30363d"}],
}
BASE_RC = {"svg.hashsalt": "plotboard", "path.simplify": True}


_modules: dict[str, tuple[str, types.ModuleType]] = {}


def load_plot_function(job: RenderJob):
    """Import the plot function; a board module is re-executed whenever its source changes."""
    module_name, _, func_name = job.plot.partition(":")
    if job.root not in sys.path:
        sys.path.insert(0, job.root)
    if job.plot_file is None:
        module = importlib.import_module(module_name)
    else:
        # Compiled from source by content hash, not through cached bytecode: an edit within
        # the same second as the last one must still be picked up.
        source = Path(job.plot_file).read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        cached = _modules.get(job.plot_file)
        if cached is not None and cached[0] == digest:
            module = cached[1]
        else:
            module = types.ModuleType(module_name)
            module.__file__ = job.plot_file
            sys.modules[module_name] = module
            exec(compile(source, job.plot_file, "exec"), module.__dict__)
            _modules[job.plot_file] = (digest, module)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no function {func_name!r}") from None


def render(job: RenderJob) -> RenderOutput:
    """Draw the chart and return its files' bytes. Raises whatever the plot function raises."""
    started = time.perf_counter()
    function = load_plot_function(job)
    with matplotlib.rc_context(BASE_RC), matplotlib.style.context(THEME_STYLES[job.theme]):
        fig = Figure(figsize=job.size, dpi=job.dpi)
        function(fig, [Path(p) for p in job.inputs], **job.params)
        files: dict[str, bytes] = {}
        png = {"compress_level": job.png_compression}
        files[f"{job.name}.png"] = _save(fig, "png", job.dpi, pil_kwargs=png)
        if job.hidpi:
            files[f"{job.name}@2x.png"] = _save(fig, "png", job.dpi * 2, pil_kwargs=png)
        if "svg" in job.formats:
            files[f"{job.name}.svg"] = _save(fig, "svg", job.dpi, metadata={"Date": None})
    digest = hashlib.sha256(files[f"{job.name}.png"]).hexdigest()[:16]
    return RenderOutput(job.name, files, digest, (time.perf_counter() - started) * 1000)


def _save(fig: Figure, fmt: str, dpi: int, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, **kwargs)
    return buf.getvalue()
