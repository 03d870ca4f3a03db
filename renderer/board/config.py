"""The board file: one validating loader that turns plotboard.toml into frozen dataclasses.

Every problem is collected and named by its path (``charts[0] (cpu).every``) so a user fixes
them all in one go; unknown keys are errors, never silently ignored. What each key accepts and
its default are in renderer/board/options.py (the kinds in renderer/board/kinds.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import tomli  # tomllib itself, compiled: 3-4x faster on a board file of thousands of charts

from renderer.board.durations import cron_period, parse_duration  # noqa: F401 - re-exported
from renderer.errors import ConfigError
from renderer.readfile import BOARD_FILE_LIMIT, read_file
from renderer.text import one_line
from renderer.board.alert_options import load_alerts
from renderer.board.families import Expansion, expand, settle, windowed
from renderer.render.limits import PIXEL_LIMIT, SIDE_LIMIT
from renderer.board.kinds import NAME_RE, Option, Problems, non_finite
from renderer.board.model import Board, Chart, Failed, name_problem
from renderer.board.options import BOARD_OPTIONS, CHART_OPTIONS, PUBLISH_OPTIONS
from renderer.board.zoom_options import zoom_problem
from renderer.board.publish_kinds import PublishSpec
from renderer.render.plotfunc import find_plot_file  # noqa: F401 - re-exported

log = logging.getLogger("plotboard")


BOARD_KEYS = {o.name for o in BOARD_OPTIONS}
CHART_KEYS = {o.name for o in CHART_OPTIONS}
CHART_ONLY_KEYS = {o.name for o in CHART_OPTIONS if not o.in_defaults}
TOP_KEYS = {"board", "defaults", "charts", "alerts", "publish"}
DEFAULT_BOARD_FILE = "plotboard.toml"
# Where a key that is not allowed in a table belongs, when it is a key of another table.
_IN_BOARD = "it belongs in [board]"
_IN_CHART = "it belongs in a [[charts]] table (or in [defaults], for every chart)"
ELSEWHERE = {
    "": {**{k: _IN_CHART for k in CHART_KEYS}, **{k: _IN_BOARD for k in BOARD_KEYS}},
    "board": {k: _IN_CHART for k in CHART_KEYS},
    "defaults": {**{k: _IN_BOARD for k in BOARD_KEYS},
                 **{k: "only a [[charts]] table may set it, each its own" for k in CHART_ONLY_KEYS}},
    "charts": {k: _IN_BOARD for k in BOARD_KEYS},
}
# What a chart gets for a key that neither it nor [defaults] sets (as a board file writes it).
DEFAULTS = {o.name: o.default for o in CHART_OPTIONS if o.default is not None}
_ABSENT = object()


def _list_key(name: str, value: list) -> tuple | None:
    """What an option's checked list is cached under, if it holds plain values only (each with
    its type, so that 1, 1.0 and true stay apart, as for a plain value)."""
    if all(isinstance(v, (str, int, float)) for v in value):
        return name, list, tuple((type(v), v) for v in value)
    return None


class _Collector:
    """Collects problems; a value that is wrong reads as None and its problem is recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []
        self.excluded: tuple[str, ...] = ()  # the charts' `excluded`, once the board's folders are read
        # An option's check of a plain value depends only on it and the root: a board of
        # thousands of charts sharing `plot`, `size` or `max_memory` checks each once.
        self._checked: dict[tuple[str, type, Any], Any] = {}

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unknown(self, where: str, table: dict, allowed: set[str], elsewhere: dict[str, str]) -> None:
        """Report every key of `table` that is not allowed there: where it belongs when it is a
        key of another table (`elsewhere`: key -> that hint), else the nearest allowed key when one
        is close (a typo), else the keys allowed."""
        for key in table:
            if key in allowed:
                continue
            if key in elsewhere:
                hint = f" here: {elsewhere[key]}"
            elif close := difflib.get_close_matches(key, allowed, n=1):
                hint = f": did you mean {json.dumps(close[0])}?"
            else:
                hint = f" (allowed: {', '.join(sorted(allowed))})"
            message = f"unknown key {json.dumps(key, ensure_ascii=False)}{hint}"
            if where:
                self.add(where, message)
            else:
                self.problems.append(message)

    def blame_defaults(self, since: int, where: str, own: dict, defaults: dict) -> None:
        """Name `defaults.KEY` (once) for problems with a value the chart took from [defaults]."""
        kept = self.problems[:since]
        for problem in self.problems[since:]:
            for key in defaults:
                if key not in own and re.match(rf"{re.escape(where)}\.{re.escape(key)}[:.\[]", problem):
                    problem = "defaults." + problem[len(where) + 1:]
                    break
            if problem not in kept:
                kept.append(problem)
        self.problems[:] = kept

    def read(self, where: str, table: dict, options: tuple[Option, ...]) -> dict[str, Any]:
        """Every option's value from `table` (its default when absent); None where it is wrong."""
        values: dict[str, Any] = {}
        root = self.root
        for option in options:
            name = option.name
            value = table.get(name, _ABSENT)
            if value is _ABSENT:
                if option.required is not None:
                    self.add(f"{where}.{name}", f"missing ({option.required})")
                    values[name] = None
                    continue
                value = option.default if option.default_from is None else option.default_from(table)
                if value is None:
                    values[name] = None
                    continue
            key = ((name, type(value), value) if isinstance(value, (str, int, float))
                   else _list_key(name, value) if isinstance(value, list) else None)
            if key in self._checked:  # checked before (so finite)
                values[name] = self._checked[key]
            elif found := non_finite(value):
                for inside, number in found:
                    written = "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")
                    self.add(f"{where}.{name}{inside}", f"expected a finite number, got {written} "
                             "(TOML's inf and nan, or a number too large for a float, like 1e400)")
                values[name] = None
                continue
            else:
                try:
                    values[name] = option.check(value, root)
                except Problems as exc:  # several things wrong in one value (a list's entries)
                    for key, message in zip(getattr(exc, "keys", None) or [""] * len(exc.messages), exc.messages):
                        self.add(f"{where}.{name}{key}", message)
                    values[name] = None
                except ValueError as exc:
                    self.add(f"{where}.{name}", str(exc))
                    values[name] = None
                else:
                    if key is not None:
                        self._checked[key] = values[name]
            if option.excludes and name in table:
                for other in option.excludes:
                    if other in table:
                        self.add(f"{where}.{name}", f"set either {other} or {name}, not both")
        return values


def load_board(path: str | os.PathLike) -> Board:
    """Read and validate a board file; raises ConfigError listing every problem.

    What a run or build will do with it (its own templates render, its literal inputs exist)
    is checked by them: renderer.pages.model.check_use.
    """
    path = Path(path)
    try:
        raw = read_file(path, BOARD_FILE_LIMIT)  # never a FIFO or a device: a SIGHUP must not hang the daemon
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the board file: {exc.strerror}"]) from None
    if raw.startswith(b"\xef\xbb\xbf"):  # some Windows editors write one; TOML has none
        raise ConfigError(path, ["starts with a byte order mark (BOM): save it as UTF-8 without one"])
    try:
        data = tomli.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc}"]) from None
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(path, [f"invalid TOML: {exc}"]) from None
    return board_from_data(path, data)


def expand_again(board: Board) -> Board:
    """The board as its file reads now that files matching a family's glob appeared or went
    (the same board file, expanded afresh); raises ConfigError like load_board. A member newly
    left out (renderer.board.model.Failed) is logged."""
    new = board_from_data(board.path, board.data)
    known = {(f.name, f.error) for f in board.failed}
    for failed in new.failed:
        if (failed.name, failed.error) not in known:
            log_failed(new, failed)
    return new


def log_failed(board: Board, failed: Failed) -> None:
    """Say that a family's member is left out, and why (a warning: the board goes on)."""
    log.warning("%s: %s: %s is shown as a chart in error: %s", board.path, failed.where, failed.name,
                one_line(failed.error))


def board_from_data(path: Path, data: dict) -> Board:
    """A Board from a parsed board file; raises ConfigError listing every problem."""
    root = path.resolve().parent
    c = _Collector(root)
    c.unknown("", data, TOP_KEYS, ELSEWHERE[""])

    board_table = data.get("board", {})
    if not isinstance(board_table, dict):
        c.add("board", f"expected a table, got {board_table!r}")
        board_table = {}
    c.unknown("board", board_table, BOARD_KEYS, ELSEWHERE["board"])
    b = c.read("board", board_table, BOARD_OPTIONS)
    if "state" not in board_table and b["state"] is not None and path.name != DEFAULT_BOARD_FILE:
        # Two board files in one folder are two boards, each with its own bookkeeping: a board
        # file of another name keeps its own below .plotboard/ (plotboard.toml's stays in it).
        b["state"] = b["state"] / path.name
    if b["output"] is not None and b["state"] is not None:
        c.excluded = (str(b["output"]), str(b["state"]))

    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        c.add("defaults", f"expected a table, got {defaults!r}")
        defaults = {}
    c.unknown("defaults", defaults, CHART_KEYS - CHART_ONLY_KEYS, ELSEWHERE["defaults"])

    charts_raw = data.get("charts", [])
    if not isinstance(charts_raw, list):
        c.add("charts", "expected an array of tables ([[charts]])")
        charts_raw = []
    items: list[Chart | Expansion] = []  # the board file's charts and families, in its order
    seen: dict[str, str] = {}  # name -> which chart of the board file has it (families' members aside)
    for i, table in enumerate(charts_raw):
        where = f"charts[{i}]"
        if not isinstance(table, dict):
            c.add(where, f"expected a table, got {table!r}")
            continue
        name = table.get("name")
        if isinstance(name, str):
            where = f"charts[{i}] ({name})"
        before = len(c.problems)
        if "foreach" in table:
            c.unknown(where, table, CHART_KEYS, ELSEWHERE["charts"])  # the family's own keys, checked once
            expansion = expand(where, {**defaults, **table}, root, c.excluded, c.add,
                               lambda w, t, hide: _load_chart(c, w, t, None, hide, member=True))
            c.blame_defaults(before, where, table, defaults)
            if expansion is not None:
                items.append(expansion)
            continue
        chart = _load_chart(c, where, {**defaults, **table}, table)
        c.blame_defaults(before, where, table, defaults)
        # a chart with other problems still claims its name, so a duplicate is reported with them
        claimed = chart.name if chart is not None else name if isinstance(name, str) and NAME_RE.match(name) else None
        if claimed is None:
            continue
        if claimed in seen:
            c.add(f"{where}.name", f"duplicate name {claimed!r} ({where}; also {seen[claimed]})")
            continue
        seen[claimed] = where
        if chart is not None:
            items.append(chart)
    # A family's member never stops the board: one whose name a chart has, or two files giving
    # one name, are left out and shown as failed entries (renderer.board.families.settle).
    families, failed = settle([e for e in items if isinstance(e, Expansion)], seen)
    charts: list[Chart] = []
    for item in items:
        for chart in [item] if isinstance(item, Chart) else [m for m, _ in item.members]:
            charts.extend(windowed(chart))

    # Cross-field rules, checked last.
    output = b["output"]
    if output is not None:
        if output == root or output in root.parents:
            c.add("board.output", f"must be a folder of its own below the board file's folder, got {output}")
        inside = str(output) + os.sep  # inputs are normalized absolute paths: a lexical test, as Path's
        for chart in charts:
            if chart.window_of is not None:
                continue  # a window's inputs are its chart's, checked once
            for pattern in chart.inputs:
                if pattern == str(output) or pattern.startswith(inside):
                    c.add(f"charts ({chart.name}).inputs", f"{pattern} is inside the output folder {output}")
    state = b["state"]
    if state is not None:
        if state == root or state in root.parents:
            c.add("board.state", f"must be a folder of its own, not the board file's folder or above it, got {state}")
        if output is not None and (state == output or state.is_relative_to(output) or output.is_relative_to(state)):
            c.add("board.state", f"must be apart from the output folder {output}, got {state}")
    if b["executor"] == "dask" and not b["scheduler"]:
        c.add("board.scheduler", "required when executor = \"dask\" (e.g. 'tcp://127.0.0.1:8786')")

    alerts = load_alerts(data.get("alerts", []), c)
    b["publish"] = _publish(c, data.get("publish"))
    if c.problems:
        raise ConfigError(path, c.problems)
    return Board(path=path.resolve(), root=root, charts=tuple(charts), families=tuple(families),
                 failed=tuple(failed), data=data, alerts=alerts, **b)


def _publish(c: _Collector, table: Any) -> PublishSpec | None:
    """`[publish]`: where the output folder is mirrored (None without it)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        c.add("publish", f"expected a table ([publish]), got {table!r}")
        return None
    c.unknown("publish", table, {o.name for o in PUBLISH_OPTIONS}, {})
    v = c.read("publish", table, PUBLISH_OPTIONS)
    if v["url"] is None:
        return None
    url, bucket, prefix = v["url"]
    return PublishSpec(url, bucket, prefix, v["endpoint_url"], v["region"])


def with_exclusions(board: Board) -> Board:
    """The board with each chart told which folders' files are never its inputs."""
    excluded = (str(board.output), str(board.state_dir))
    return dataclasses.replace(board, charts=tuple(dataclasses.replace(c, excluded=excluded) for c in board.charts))


def _load_chart(c: _Collector, where: str, t: dict, own: dict | None,
                hide: frozenset[str] = frozenset(), member: bool = False) -> Chart | None:
    """One chart from its table `t` ([defaults] merged in); None when it has problems.

    `own`: the chart's own table, whose keys are checked (None: checked already); `hide`: keys
    whose problems were reported already (a family's name and placeholders), not said twice;
    `member`: a family's member, whose name's length renderer.board.families judges.
    """
    before = len(c.problems)
    if own is not None:
        c.unknown(where, own, CHART_KEYS, ELSEWHERE["charts"])
    v = c.read(where, t, CHART_OPTIONS)
    if not member and isinstance(v["name"], str) and (problem := name_problem(v["name"], v["windows"] or ())):
        c.add(f"{where}.name", problem)
    if problem := zoom_problem(v):
        c.add(f"{where}.zoom", problem)
    if hide:
        said = re.compile(rf"{re.escape(where)}\.(?:{'|'.join(map(re.escape, hide))})[:.\[]")
        c.problems[before:] = [p for p in c.problems[before:] if not said.match(p)]
    if len(c.problems) > before:
        return None
    v["plot"], v["plot_file"] = v["plot"]
    if problem := _too_many_pixels(v["size"], v["dpi"], v["hidpi"]):
        c.add(f"{where}.size", problem)
        return None
    v.pop("foreach", None)
    v["windows"] = v["windows"] or ()
    if v["stale_after"] is None:
        if v["every"] is not None:
            v["stale_after"] = 3 * v["every"]
        elif v["cron"] is not None:
            v["stale_after"] = 3 * cron_period(v["cron"])
    return Chart(**v, excluded=c.excluded)


MIN_SIDE = 10  # pixels: the least an image may have along a side (a chart any smaller shows nothing)


def _too_many_pixels(size: tuple[float, float], dpi: int, hidpi: bool) -> str | None:
    """Why an image of `size` inches at `dpi` (and twice that with hidpi) is too large or too
    small, or None."""
    scale = 2 if hidpi else 1
    width, height = round(size[0] * dpi * scale), round(size[1] * dpi * scale)
    which = "the @2x image" if hidpi else "the image"
    small_w, small_h = round(size[0] * dpi), round(size[1] * dpi)
    if min(small_w, small_h) < MIN_SIDE:
        return (f"the image would be {small_w} × {small_h} pixels (size × dpi = {dpi}); it needs at least "
                f"{MIN_SIDE} pixels along each side: make size or dpi larger")
    if width * height > PIXEL_LIMIT or max(width, height) > SIDE_LIMIT:
        return (f"{which} would be {width} × {height} = {width * height:,} pixels (size × dpi = {dpi}"
                f"{', × 2 for hidpi' if hidpi else ''}); the limit is {PIXEL_LIMIT:,} pixels, "
                f"{SIDE_LIMIT:,} along a side: make size or dpi smaller")
    return None
