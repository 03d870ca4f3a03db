"""Retained plots: a plot function written as a generator keeps its figure in the worker.

The first render of such a chart calls the function with (fig, inputs, **params) and runs it to
its first `yield`; later renders of the same chart in the same process `send((inputs, params))`
into it and save the same figure again.

Kept figures are keyed by (chart name, window name). A zoomable chart's on-demand renders
(renderer.daemon.zoom) come under the chart's own name with the window "custom", another size
and window: keyed by name alone they would replace the scheduled render's figure, and the next
scheduled render would start afresh each time a viewer zooms. In their own slot they leave it
alone, and a viewer who pans (the same window and width, another `end`) updates theirs. Both
slots count within the bounds below, like any two charts.

A slot starts afresh (a new Figure, the function called again) when:

- anything in its job that shapes the figure changed (size, dpi, theme, layout, params, window,
  formats: every field but the inputs, the limits and where files live);
- its plot function is another object: the plot module or a board module it uses changed, so
  renderer.render.modules executed them again (in Dask, a new module source too);
- the generator ended (StopIteration): that render is drawn afresh at once;
- the generator raised, or the render failed after it (the contract's checks, saving): that
  render fails like any other, and the next one is fresh;
- it was dropped to keep the process's kept figures within bounds (least recently used first:
  KEPT_FIGURES per process, and their estimated bytes within max_memory / KEPT_SHARE);
- the process is another one (a worker replaced, another Dask render process).

Before each update the figure is put back as a fresh one would be when the plot runs (its layout
engine, its subplot parameters and its axes at their grid positions), so the layout engine starts
from where a fresh figure starts and the image has the same pixels as a fresh render.
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import sys
import types
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

KEPT_FIGURES = 16  # retained figures one process keeps at most
KEPT_SHARE = 4  # together they are estimated to use at most max_memory / KEPT_SHARE
UNLIMITED_BUDGET = 256 * 2**20  # bytes, when the chart has no max_memory
WALK_LIMIT = 200_000  # objects visited at most when estimating one figure's bytes
MEASURE_EVERY = 16  # renders of a kept figure between estimates (one costs ~3 ms for the reference chart)
# Job fields that do not shape the figure: the data a render brings, its limits, where files live.
NOT_SETTINGS = {"name", "inputs", "inputs_problem", "max_memory", "aliases", "plot_file", "root",
                "end"}  # a zoomable chart's `end`, if the job carries one, is data like the inputs


@dataclass
class Kept:
    """One chart's retained figure and the generator that updates it."""

    settings: tuple
    function: Callable[..., Any]
    generator: Generator
    fig: Any
    engine: Any  # the figure's layout engine, taken off it after each layout (renderer.render.draw)
    subplotpars: dict[str, float]  # as the figure was made, for the engine to start from
    used: frozenset[str] = frozenset()  # board files the first render used (renderer.render.modules)
    size: int = 0  # estimated bytes
    renders: int = 0


_kept: OrderedDict[tuple, Kept] = OrderedDict()  # slot(job) -> kept, least recently used first


def slot(job: Any) -> tuple:
    """Where a job's kept figure lives: its chart and window ("custom" on demand)."""
    return job.name, job.window_name


def settings(job: Any) -> tuple:
    return tuple((f.name, getattr(job, f.name)) for f in dataclasses.fields(job) if f.name not in NOT_SETTINGS)


def budget(job: Any) -> int:
    return UNLIMITED_BUDGET if job.max_memory is None else job.max_memory // KEPT_SHARE


def draw(job: Any, function: Callable[..., Any], inputs: list, kwargs: dict, new_figure: Callable[[], Any]):
    """Draw the chart: update its kept figure, or make a new one and call the plot function.

    Returns (figure, Kept or None): a Kept to hand to keep() once the render succeeded, else to
    discard(). The slot's kept figure is taken out while it renders: a failure drops it."""
    kept = _kept.pop(slot(job), None)
    trim(budget(job))
    if kept is not None and (kept.function is not function or kept.settings != settings(job)):
        discard(kept)
        kept = None
    if kept is not None:
        _as_new(kept)
        try:
            kept.generator.send((inputs, kwargs))
        except StopIteration:  # the plot ended: this render starts afresh
            discard(kept)
        except BaseException:
            discard(kept)
            raise
        else:
            return kept.fig, kept
    fig = new_figure()
    subplotpars = dict(vars(fig.subplotpars))
    result = function(fig, inputs, **kwargs)
    if not inspect.isgenerator(result):
        return fig, None
    try:
        next(result)
    except StopIteration:  # drew and ended at once: an ordinary render
        return fig, None
    return fig, Kept(settings(job), function, result, fig, fig.get_layout_engine(), subplotpars)


def keep(job: Any, kept: Kept, used: set[str]) -> None:
    """After a successful render: keep its figure as the most recently used, within bounds."""
    if not kept.used:
        kept.used = frozenset(used)
    canvas = kept.fig.canvas
    if getattr(canvas, "renderer", None) is not None:
        canvas.renderer = None  # the Agg buffer is the worker's to share (renderer.render.draw), not the figure's
    if kept.renders % MEASURE_EVERY == 0:
        kept.size = footprint(kept)
    kept.renders += 1
    if kept.size > budget(job):
        discard(kept)
        return
    _kept[slot(job)] = kept
    trim(budget(job))


def trim(limit: int) -> None:
    """Drop the least recently used figures until at most KEPT_FIGURES are kept and their
    estimated bytes are within `limit`."""
    while _kept and (len(_kept) > KEPT_FIGURES or sum(k.size for k in _kept.values()) > limit):
        discard(_kept.popitem(last=False)[1])


def discard(kept: Kept) -> None:
    """Let a kept figure go; its generator is closed (its `finally` blocks run now)."""
    try:
        kept.generator.close()
    except BaseException:  # noqa: BLE001 - a plot's cleanup failing must not fail a render
        pass


def _as_new(kept: Kept) -> None:
    """Put the kept figure's layout back as a fresh figure has it when the plot runs."""
    fig = kept.fig
    if kept.engine is None:
        return
    fig.set_layout_engine(kept.engine)
    fig.subplotpars.update(**kept.subplotpars)
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None and ax.get_in_layout():
            ax.set_subplotspec(spec)  # back to the grid's position, as when it was added


_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         types.CodeType, types.FrameType)


def footprint(kept: Kept) -> int:
    """Estimated bytes a kept figure holds: what its figure and its generator's locals reach
    (numpy arrays with their data, Agg renderers with their pixels), modules, classes and
    functions left out."""
    frame = kept.generator.gi_frame
    roots: list[Any] = [kept.fig] + (list(frame.f_locals.values()) if frame is not None else [])
    shared = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen: set[int] = set()
    total = 0
    while roots and len(seen) < WALK_LIMIT:
        obj = roots.pop()
        if id(obj) in seen or id(obj) in shared or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        try:
            total += sys.getsizeof(obj)
        except TypeError:
            continue
        if hasattr(obj, "buffer_rgba") and isinstance(getattr(obj, "width", None), int):
            total += obj.width * obj.height * 4  # an Agg renderer a Text still holds: its pixels
        roots.extend(gc.get_referents(obj))
    return total
