"""The data that crosses between the daemon and render workers: plain, picklable, no matplotlib."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from renderer.text import MAX_ERROR, MAX_TRACEBACK, cut


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs to draw one chart; plain data, so it pickles anywhere."""

    name: str
    plot: str  # "module:function"
    plot_file: str | None  # source of the module when it lives next to the board file
    root: str  # the board file's folder, importable
    inputs: tuple[str, ...]  # existing input files, sorted, globs expanded
    size: tuple[float, float]
    dpi: int
    hidpi: bool
    formats: tuple[str, ...]
    png_compression: int
    theme: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    max_memory: int | None = None  # bytes the render may use (renderer.render.limits); None: no limit
    inputs_problem: str | None = None  # the inputs went past their limits: the render fails with this
    window: float | None = None  # seconds: passed to the plot as `window`, with `window_name`
    window_name: str | None = None
    aliases: tuple[str, ...] = ()  # more names for the same files (the first window's NAME.WINDOW)
    layout: str = "constrained"  # the figure's layout engine: "constrained", "tight" or "none"
    zoom: bool = False  # the plot gets `end` too: this job's `end`, else the render's start (epoch seconds)
    end: float | None = None
    scale: int = 1  # NAME.png drawn at scale × dpi, as NAME@2x.png is at 2 (a zoom's `scale=2`)


@dataclass(frozen=True)
class RenderOutput:
    """A successful render: file name -> bytes, the PNG's hash, and how long drawing took."""

    name: str
    files: dict[str, bytes]
    hash: str
    duration_ms: float
    modules: dict[str, str] | None = None  # board files the render used -> digest of what ran (renderer.render.modules)
    axes: dict[str, Any] | None = None  # the first axes' place in the image and x range (renderer.render.axes)


class FailureKind(enum.Enum):
    """Why a render failed, for code to act on; `RenderFailure.error` is the text people read."""

    PLOT = "plot"  # the render raised: the plot function, drawing or saving, preparing its inputs
    TIMEOUT = "timeout"  # it ran past render_timeout and was killed
    WORKER_DIED = "worker-died"  # the process or Dask worker running it died, or its result was lost
    UNAVAILABLE = "unavailable"  # the executor could not run it: no scheduler, no workers, a failed submit
    CANCELLED = "cancelled"  # plotboard stopped before it finished
    PUBLISH = "publish"  # it rendered, but its files could not be written


@dataclass(frozen=True)
class RenderFailure:
    """A failed render: 'ExceptionType: message', with the traceback for the log, and its kind.

    Every failure is made here, so here its text is bounded: `error` to MAX_ERROR characters and
    `traceback` to MAX_TRACEBACK (renderer.text.cut), whatever a plot's exception holds.
    """

    name: str
    error: str
    traceback: str = ""
    duration_ms: float = 0.0
    kind: FailureKind = FailureKind.PLOT
    modules: dict[str, str] | None = None  # as RenderOutput's, when the render got that far

    def __post_init__(self) -> None:
        object.__setattr__(self, "error", cut(self.error, MAX_ERROR))
        object.__setattr__(self, "traceback", cut(self.traceback, MAX_TRACEBACK))


def describe(exc: BaseException) -> str:
    """'Type: message', the form errors take in status.json and on the page."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
