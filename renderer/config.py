"""The board file: one validating loader that turns plotboard.toml into frozen dataclasses.

Every problem is collected and named by its path (``charts[1] (cpu).every``) so a user fixes
them all in one go; unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from renderer import plotfunc
from renderer.durations import cron_period, parse_duration
from renderer.errors import ConfigError
from renderer.plotfunc import find_plot_file  # noqa: F401 - importable from here as before

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
FORMATS = ("png", "svg")
THEMES = ("light", "dark")
EXECUTORS = ("local", "dask")


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
    size: tuple[float, float] = (8.0, 4.0)
    dpi: int = 100
    hidpi: bool = True
    formats: tuple[str, ...] = ("png",)
    png_compression: int = 3

    @property
    def pixels(self) -> tuple[int, int]:
        """Width and height of the 1x PNG in pixels."""
        return round(self.size[0] * self.dpi), round(self.size[1] * self.dpi)

    def files(self) -> list[str]:
        """The output files this chart publishes."""
        names = [f"{self.name}.png"]
        if self.hidpi:
            names.append(f"{self.name}@2x.png")
        if "svg" in self.formats:
            names.append(f"{self.name}.svg")
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
        }


@dataclass(frozen=True)
class Board:
    """A whole board file."""

    path: Path  # the board file
    root: Path  # its folder: relative paths and plot modules are found here
    title: str
    output: Path
    refresh: float
    workers: int
    render_timeout: float
    theme: str
    templates: Path | None
    executor: str
    scheduler: str | None
    charts: tuple[Chart, ...]

    @property
    def state_dir(self) -> Path:
        """plotboard's bookkeeping folder, next to the board file, never in the output."""
        return self.root / ".plotboard"

    def chart(self, name: str) -> Chart:
        for chart in self.charts:
            if chart.name == name:
                return chart
        raise KeyError(name)


BOARD_KEYS = {
    "title", "output", "refresh", "workers", "render_timeout", "theme", "templates",
    "executor", "scheduler",
}
CHART_ONLY_KEYS = {"name"}
CHART_KEYS = {
    "name", "title", "description", "plot", "inputs", "every", "cron", "stale_after", "params",
    "size", "dpi", "hidpi", "formats", "png_compression",
}
DEFAULTS = {
    "description": "",
    "inputs": [],
    "params": {},
    "size": [8, 4],
    "dpi": 100,
    "hidpi": True,
    "formats": ["png"],
    "png_compression": 3,
}


class _Collector:
    """Collects problems; each check returns a value or None and records what was wrong."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unknown(self, where: str, table: dict, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                hint = f" (allowed: {', '.join(sorted(allowed))})"
                self.add(f"{where}.{key}" if where else key, f"unknown key{hint}")

    def blame_defaults(self, since: int, where: str, own: dict, defaults: dict) -> None:
        """Name `defaults.KEY` (once) for problems with a value the chart took from [defaults]."""
        kept = self.problems[:since]
        for problem in self.problems[since:]:
            for key in defaults:
                if key not in own and problem.startswith(f"{where}.{key}: "):
                    problem = "defaults." + problem[len(where) + 1:]
                    break
            if problem not in kept:
                kept.append(problem)
        self.problems[:] = kept

    def typed(self, where: str, value: Any, kind: type | tuple, what: str) -> Any:
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            self.add(where, f"expected {what}, got {value!r}")
            return None
        if not isinstance(value, kind):
            self.add(where, f"expected {what}, got {value!r}")
            return None
        return value

    def duration(self, where: str, value: Any) -> float | None:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.add(where, str(exc))
            return None


def _as_tuple(kind: type | tuple) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _str_list(c: _Collector, where: str, value: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        c.add(where, f"expected a list of strings, got {value!r}")
        return None
    return value


def load_board(path: str | os.PathLike) -> Board:
    """Read and validate a board file; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the board file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"invalid TOML: {exc}"]) from None
    root = path.resolve().parent
    c = _Collector()
    c.unknown("", data, {"board", "defaults", "charts"})

    board_table = data.get("board", {})
    if not isinstance(board_table, dict):
        c.add("board", f"expected a table, got {board_table!r}")
        board_table = {}
    c.unknown("board", board_table, BOARD_KEYS)
    b = board_table
    title = c.typed("board.title", b.get("title", "plotboard"), str, "a string")
    output_s = c.typed("board.output", b.get("output", "public"), str, "a path string")
    refresh = c.duration("board.refresh", b.get("refresh", "10s"))
    workers = c.typed("board.workers", b.get("workers", os.cpu_count() or 1), int, "a whole number")
    if workers is not None and workers < 1:
        c.add("board.workers", f"expected at least 1, got {workers}")
    render_timeout = c.duration("board.render_timeout", b.get("render_timeout", "30s"))
    theme = c.typed("board.theme", b.get("theme", "light"), str, "a string")
    if theme is not None and theme not in THEMES:
        c.add("board.theme", f"expected one of {', '.join(THEMES)}, got {theme!r}")
    templates = None
    if "templates" in b:
        t = c.typed("board.templates", b["templates"], str, "a path string")
        if t is not None:
            templates = (root / t).resolve()
            if not templates.is_dir():
                c.add("board.templates", f"no such folder: {templates}")
    executor = c.typed("board.executor", b.get("executor", "local"), str, "a string")
    if executor is not None and executor not in EXECUTORS:
        c.add("board.executor", f"expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    scheduler = None
    if "scheduler" in b:
        scheduler = c.typed("board.scheduler", b["scheduler"], str, "an address like 'tcp://host:8786'")

    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        c.add("defaults", f"expected a table, got {defaults!r}")
        defaults = {}
    c.unknown("defaults", defaults, CHART_KEYS - CHART_ONLY_KEYS)

    charts_raw = data.get("charts", [])
    if not isinstance(charts_raw, list):
        c.add("charts", "expected an array of tables ([[charts]])")
        charts_raw = []
    charts: list[Chart] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(charts_raw):
        where = f"charts[{i}]"
        if not isinstance(table, dict):
            c.add(where, f"expected a table, got {table!r}")
            continue
        name = table.get("name")
        if isinstance(name, str):
            where = f"charts[{i}] ({name})"
        before = len(c.problems)
        chart = _load_chart(c, where, {**DEFAULTS, **defaults, **table}, table, root)
        c.blame_defaults(before, where, table, defaults)
        if chart is None:
            continue
        if chart.name in seen:
            c.add(f"{where}.name", f"duplicate name {chart.name!r} (also charts[{seen[chart.name]}])")
            continue
        seen[chart.name] = i
        charts.append(chart)

    output = (root / output_s).resolve() if output_s is not None else root / "public"
    # Cross-field rules, checked last.
    if output_s is not None:
        if output == root or output in root.parents:
            c.add("board.output", f"must be a folder of its own below the board file's folder, got {output}")
        for chart in charts:
            for pattern in chart.inputs:
                if Path(pattern).is_relative_to(output):
                    c.add(f"charts ({chart.name}).inputs", f"{pattern} is inside the output folder {output}")
    if executor == "dask" and not scheduler:
        c.add("board.scheduler", "required when executor = \"dask\" (e.g. 'tcp://127.0.0.1:8786')")

    if c.problems:
        raise ConfigError(path, c.problems)
    return Board(
        path=path.resolve(), root=root, title=title, output=output, refresh=refresh,
        workers=workers, render_timeout=render_timeout, theme=theme, templates=templates,
        executor=executor, scheduler=scheduler, charts=tuple(charts),
    )


def _load_chart(c: _Collector, where: str, t: dict, own: dict, root: Path) -> Chart | None:
    before = len(c.problems)
    c.unknown(where, own, CHART_KEYS)
    name = t.get("name")
    if name is None:
        c.add(f"{where}.name", "missing (every chart needs a name)")
    elif not isinstance(name, str) or not NAME_RE.match(name):
        c.add(f"{where}.name", f"expected a name matching [a-z0-9][a-z0-9_-]*, got {name!r}")
    title = c.typed(f"{where}.title", t.get("title", name if isinstance(name, str) else ""), str, "a string")
    description = c.typed(f"{where}.description", t["description"], str, "a string")
    plot = t.get("plot")
    plot_file = None
    if plot is None:
        c.add(f"{where}.plot", "missing (expected 'module:function')")
    else:
        try:
            plotfunc.parse(plot)
            plot_file = plotfunc.locate(plot, root)
        except ValueError as exc:
            c.add(f"{where}.plot", str(exc))
    inputs = _str_list(c, f"{where}.inputs", t["inputs"])
    every = c.duration(f"{where}.every", t["every"]) if "every" in t else None
    cron = None
    if "cron" in t:
        cron = c.typed(f"{where}.cron", t["cron"], str, "a cron expression string")
        if cron is not None:
            try:
                cron_period(cron)
            except ValueError as exc:
                c.add(f"{where}.cron", str(exc))
    if "every" in t and "cron" in t:
        c.add(f"{where}.cron", "set either every or cron, not both")
    stale_after = c.duration(f"{where}.stale_after", t["stale_after"]) if "stale_after" in t else None
    params = c.typed(f"{where}.params", t["params"], dict, "a table")
    size = t["size"]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in size)):
        c.add(f"{where}.size", f"expected [width, height] in inches, got {size!r}")
        size = None
    dpi = c.typed(f"{where}.dpi", t["dpi"], int, "a whole number")
    if dpi is not None and not 10 <= dpi <= 1000:
        c.add(f"{where}.dpi", f"expected 10 to 1000, got {dpi}")
    hidpi = c.typed(f"{where}.hidpi", t["hidpi"], bool, "true or false")
    formats = _str_list(c, f"{where}.formats", t["formats"])
    if formats is not None and ("png" not in formats or not set(formats) <= set(FORMATS)):
        c.add(f"{where}.formats", f"expected a list with 'png' and optionally 'svg', got {formats!r}")
    level = c.typed(f"{where}.png_compression", t["png_compression"], int, "a whole number 0-9")
    if level is not None and not 0 <= level <= 9:
        c.add(f"{where}.png_compression", f"expected 0 to 9, got {level}")
    if len(c.problems) > before:
        return None
    if stale_after is None:
        if every is not None:
            stale_after = 3 * every
        elif cron is not None:
            stale_after = 3 * cron_period(cron)
    return Chart(
        name=name, title=title, description=description, plot=plot, plot_file=plot_file,
        inputs=tuple(os.path.normpath(os.path.join(root, p)) for p in inputs),
        every=every, cron=cron, stale_after=stale_after, params=params,
        size=(float(size[0]), float(size[1])), dpi=dpi, hidpi=hidpi, formats=tuple(formats),
        png_compression=level,
    )


def settings_digest(chart: Chart) -> str:
    """A stable digest of the settings that change a chart's image."""
    blob = json.dumps(chart.render_settings(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
