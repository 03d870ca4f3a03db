"""The board as the program uses it: frozen dataclasses of one board file and its charts, made
by renderer.board.config's loader (families expanded, one internal chart per time window)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from renderer.board.kinds import Window
from renderer.board.publish_kinds import PublishSpec
from renderer.board.options import CHART, program_default

if TYPE_CHECKING:
    from renderer.board.alert_options import Alert
    from renderer.board.families import Family

FILE_NAME_LIMIT = 255  # bytes in a file name (NAME_MAX of Linux's and most other file systems)
# The longest file made from a name: a hidden temporary file of its @2x image, as
# renderer.render.files.write_temp names it (`.NAME@2x.png.abcdef01.tmp`).
LONGEST_FILE = ".{}@2x.png.abcdef01.tmp"
MAX_NAME = FILE_NAME_LIMIT - len(LONGEST_FILE.format(""))  # 234: a name (with windows, NAME.WINDOW) at most


def name_problem(name: str, windows: tuple[Window, ...] = ()) -> str | None:
    """Why the files plotboard would make from a chart's name do not fit a file name's 255
    bytes (temporary files, @2x, .svg and NAME.WINDOW included), or None."""
    longest = max((f"{name}.{w.name}" for w in windows), key=len, default=name)
    if len(longest.encode()) <= MAX_NAME:
        return None
    suffix = longest[len(name):]
    example = LONGEST_FILE.format(f"NAME{suffix}")
    size = len(LONGEST_FILE.format(longest).encode())
    return (f"too long: {len(name)} characters make files like {example} {size} bytes long, over the "
            f"{FILE_NAME_LIMIT} bytes a file name may have; make it at most {max(MAX_NAME - len(suffix), 0)} "
            f"characters{' with window ' + repr(suffix[1:]) if suffix else ''}")


@dataclass(frozen=True)
class Chart:
    """One chart of the board, with defaults applied and paths made absolute."""

    name: str
    title: str
    description: str
    plot: str  # "module:function"
    plot_file: Path | None  # the module's source file, when it has one
    inputs: tuple[str, ...]  # absolute paths or glob patterns
    every: float | None
    cron: str | None
    stale_after: float | None
    params: dict[str, Any] = field(hash=False)
    group: str | None = None  # the board's section; not a render setting (the image does not change)
    # Defaults for charts made in code; the board file's come from the same table.
    size: tuple[float, float] = program_default(CHART["size"])
    dpi: int = program_default(CHART["dpi"])
    hidpi: bool = program_default(CHART["hidpi"])
    formats: tuple[str, ...] = program_default(CHART["formats"])
    png_compression: int = program_default(CHART["png_compression"])
    layout: str = program_default(CHART["layout"])
    max_memory: int = program_default(CHART["max_memory"])  # bytes
    history: int = program_default(CHART["history"])  # past images kept (renderer.store.history); not a render setting
    zoom: bool = False  # drawn on demand too (GET /render/NAME.png); the plot gets `end`
    # Folders whose files are never inputs: the board's output folder and .plotboard/.
    excluded: tuple[str, ...] = field(default=(), compare=False)
    family: str | None = None  # a family member: the family's unexpanded name ("disk-{match}")
    windows: tuple[Window, ...] = ()  # every window of the chart, as the board file lists them
    window: Window | None = None  # the window this (internal) chart renders
    window_of: str | None = None  # a later window's internal chart: the chart it belongs to

    @property
    def pixels(self) -> tuple[int, int]:
        """Width and height of the 1x PNG in pixels."""
        return round(self.size[0] * self.dpi), round(self.size[1] * self.dpi)

    def files(self) -> list[str]:
        """The output files this chart publishes."""
        bases = [self.name]
        if self.window is not None and self.window_of is None:
            bases.append(f"{self.name}.{self.window.name}")  # the first window: NAME.png and NAME.1d.png
        names = []
        for base in bases:
            names.append(f"{base}.png")
            if self.hidpi:
                names.append(f"{base}@2x.png")
            if "svg" in self.formats:
                names.append(f"{base}.svg")
        return names

    def render_settings(self) -> dict[str, Any]:
        """The settings that change the image's bytes (title and schedule do not)."""
        return {
            "plot": self.plot,
            "inputs": list(self.inputs),
            "params": self.params,
            "size": list(self.size),
            "dpi": self.dpi,
            "hidpi": self.hidpi,
            "formats": list(self.formats),
            "png_compression": self.png_compression,
            "layout": self.layout,
            **({"window": [self.window.name, self.window.seconds]} if self.window else {}),
            **({"zoom": True} if self.zoom else {}),
        }


@dataclass(frozen=True)
class Failed:
    """A family member that is not on the board: its file's name gives a name another chart has
    or that cannot be a chart's, or the family's glob went past its limits. It is shown where a
    chart would be, in error, and never rendered; the rest of the board is not held up by it."""

    name: str  # a valid chart name of its own, unique on the board
    title: str
    error: str  # one line naming the file(s): "NameClash: data/a.csv and data/b.csv both give …"
    family: str  # the family's unexpanded name
    where: str  # the family in the board file: "charts[0] (disk-{match})"
    group: str | None = None
    pixels: tuple[int, int] = (800, 400)  # the size its card keeps free


@dataclass(frozen=True)
class Board:
    """A whole board file."""

    path: Path  # the board file
    root: Path  # its folder: relative paths and plot modules are found here
    title: str
    output: Path
    state: Path  # the bookkeeping folder: `[board] state`, by default .plotboard next to the board file
    refresh: float
    workers: int
    render_timeout: float
    theme: str
    check_every: float
    page_limit: int
    templates: Path | None
    executor: str
    scheduler: str | None
    charts: tuple[Chart, ...]  # every chart plotboard renders: families expanded, one per window
    url: str | None = None  # where the board is served (links in alerts)
    alerts: tuple[Alert, ...] = ()
    families: tuple[Family, ...] = ()
    publish: PublishSpec | None = None  # [publish]: where the output folder is mirrored
    failed: tuple[Failed, ...] = ()  # family members left out, shown as charts in error
    zoom_cache: int = 256 * 1024 * 1024  # bytes the cache of on-demand images may use
    data: dict = field(default_factory=dict, hash=False, compare=False, repr=False)  # the parsed file

    @property
    def state_dir(self) -> Path:
        """plotboard's bookkeeping folder (.plotboard next to the board file unless `[board]
        state` says otherwise), never in the output folder. `state` is the board file's key; code
        reads this name, which says what it is."""
        return self.state

    def chart(self, name: str) -> Chart:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Chart]:
        return {chart.name: chart for chart in self.charts}

    @cached_property
    def shown(self) -> tuple[Chart, ...]:
        """The charts as the page and status.json show them: a chart's later windows are inside it."""
        return tuple(c for c in self.charts if c.window_of is None)

    def windows_of(self, name: str) -> list[Chart]:
        """The internal charts of a chart's windows, first window first (none without windows)."""
        return self._windows.get(name, [])

    @cached_property
    def _windows(self) -> dict[str, list[Chart]]:
        found: dict[str, list[Chart]] = {}
        for chart in self.charts:
            if chart.window is not None:
                found.setdefault(chart.window_of or chart.name, []).append(chart)
        return found


def settings_digest(chart: Chart) -> str:
    """A stable digest of the settings that change a chart's image."""
    return hashlib.sha256(_SETTINGS_JSON(chart.render_settings()).encode()).hexdigest()


_SETTINGS_JSON = json.JSONEncoder(sort_keys=True, default=str).encode  # json.dumps with these options, made once
