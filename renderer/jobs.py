"""The data that crosses between the daemon and render workers: plain, picklable, no matplotlib."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class RenderOutput:
    """A successful render: file name -> bytes, the PNG's hash, and how long drawing took."""

    name: str
    files: dict[str, bytes]
    hash: str
    duration_ms: float


@dataclass(frozen=True)
class RenderFailure:
    """A failed render: 'ExceptionType: message', with the traceback for the log."""

    name: str
    error: str
    traceback: str = ""
    duration_ms: float = 0.0


def describe(exc: BaseException) -> str:
    """'Type: message', the form errors take in status.json and on the page."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
