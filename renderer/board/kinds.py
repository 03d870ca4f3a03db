"""What a board-file value may be: the kinds of option (text, name, duration, size, windows...),
each an Option whose `check` turns a board-file value into what the program uses, or raises
ValueError with the message the user sees (the loader adds the file, chart and key). The
tables that use them are renderer.board.options.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from renderer.render import plotfunc
from renderer.board.durations import cron_period, parse_duration, parse_size
from renderer.board.paths import usable_folder
from renderer.text import format_size
from renderer.render.limits import MIN_INTERVAL

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
FORMATS = ("png", "svg")
THEMES = ("light", "dark")
EXECUTORS = ("local", "dask")


class Problems(ValueError):
    """More than one thing is wrong with a value (every entry of a list checked): each message
    is reported on a line of its own."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class Option:
    """One key: any value of the board file is accepted as it is (subclasses check it)."""

    type_text = ""  # the README's "type" column

    def __init__(
        self, name: str, doc: str, default: Any = None, *, required: str | None = None,
        default_from: Callable[[dict], Any] | None = None, default_text: str | None = None,
        in_defaults: bool = True, excludes: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.doc = doc
        self.default = default  # as written in a board file; None: absent unless set
        self.required = required  # why it is needed, for the "missing (...)" message
        self.default_from = default_from  # a default computed from the rest of the table
        self._default_text = default_text
        self.in_defaults = in_defaults  # may also be set in [defaults]
        self.excludes = excludes  # keys that may not be set together with this one

    def check(self, value: Any, root: Path) -> Any:
        """The value as the program uses it (paths made absolute against `root`, the board
        file's folder); raises ValueError saying what is wrong."""
        return value

    @property
    def default_text(self) -> str:
        """The README's "default" column."""
        if self._default_text is not None:
            return self._default_text
        if self.required is not None:
            return "required"
        if self.default is None:
            return "none"
        return f"`{_toml(self.default)}`"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _toml(value: Any) -> str:
    """A default as a board file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


class Text(Option):
    type_text = "string"

    def __init__(self, name: str, doc: str, default: Any = None, *, what: str = "a string", **kw: Any) -> None:
        super().__init__(name, doc, default, **kw)
        self.what = what

    def check(self, value: Any, root: Path) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected {self.what}, got {value!r}")
        return value


class Name(Text):
    def check(self, value: Any, root: Path) -> str:
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise ValueError(f"expected a name matching [a-z0-9][a-z0-9_-]*, got {value!r}")
        return value


UNGROUPED = "ungrouped"  # the id of the section of charts without a group
MAX_GROUP_ID = 200  # characters: groups/ID.html, status/ID.json and their temporary files fit 255 bytes


def group_id(name: str | None) -> str:
    """A group's id (its page groups/ID.html, its manifest status/ID.json): its name lowercased,
    every run of other characters than [a-z0-9] a '-' (renderer.pages.groups makes ids unique)."""
    if name is None:
        return UNGROUPED
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "group"


class Group(Text):
    """A section's name: any text whose id (group_id) leaves its files room in a file name."""

    def check(self, value: Any, root: Path) -> str:
        name = super().check(value, root)
        gid = group_id(name)
        if len(gid) > MAX_GROUP_ID:
            raise ValueError(f"too long: the group's id (its name lowercased, other characters made '-') has "
                             f"{len(gid)} characters, and names its files groups/ID.html and status/ID.json; "
                             f"make it at most {MAX_GROUP_ID} characters")
        return name


class Cron(Text):
    def check(self, value: Any, root: Path) -> str:
        expr = super().check(value, root)
        fields = len(expr.split())
        if fields != 5:  # cronsim takes a sixth field, seconds, which plotboard's schedule does not
            raise ValueError(f"expected a cron expression of 5 fields (minute hour day month weekday), "
                             f"got {fields} in {expr!r}")
        cron_period(expr)
        return expr


class Choice(Text):
    def __init__(self, name: str, doc: str, default: Any, *, choices: tuple[str, ...], **kw: Any) -> None:
        super().__init__(name, doc, default, **kw)
        self.choices = choices

    @property
    def type_text(self) -> str:  # type: ignore[override]
        quoted = [f'`"{c}"`' for c in self.choices]
        return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def check(self, value: Any, root: Path) -> str:
        choice = super().check(value, root)
        if choice not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {choice!r}")
        return choice


class Folder(Text):
    """A path relative to the board file's folder, made absolute."""

    type_text = "path"

    def __init__(self, name: str, doc: str, default: Any = None, *, must_exist: bool = False, **kw: Any) -> None:
        super().__init__(name, doc, default, what="a path string", **kw)
        self.must_exist = must_exist

    def check(self, value: Any, root: Path) -> Path:
        return usable_folder(root, super().check(value, root), self.must_exist)  # loops, names too long


class Duration(Option):
    def __init__(self, name: str, doc: str, default: Any = None, *, least: float | None = None,
                 most: tuple[float, str] | None = None, **kw: Any) -> None:
        super().__init__(name, doc, default, **kw)
        self.least = least
        self.most = most  # (seconds, as the message says it) when less than durations' own limit

    @property
    def type_text(self) -> str:  # type: ignore[override]
        return "duration" if self.least is None else f"duration ≥ {self.least * 1000:g}ms"

    def check(self, value: Any, root: Path) -> float:
        seconds = parse_duration(value)
        if self.least is not None and seconds < self.least:
            raise ValueError(f"expected at least {self.least * 1000:g}ms, got {value!r}")
        if self.most is not None and seconds > self.most[0]:
            raise ValueError(f"expected at most {self.most[1]}, got {value!r}")
        return seconds


class Memory(Option):
    """A size in bytes ('512MiB', '2GiB'), at least `least`."""

    def __init__(self, name: str, doc: str, default: Any = None, *, least: int, **kw: Any) -> None:
        super().__init__(name, doc, default, **kw)
        self.least = least

    @property
    def type_text(self) -> str:  # type: ignore[override]
        return f"size ≥ {format_size(self.least)}"

    def check(self, value: Any, root: Path) -> int:
        size = parse_size(value)
        if size < self.least:
            raise ValueError(f"expected at least {format_size(self.least)} (a worker needs that much to draw), "
                             f"got {value!r}")
        return size


class Whole(Option):
    """A whole number (not a boolean), optionally within bounds."""

    def __init__(self, name: str, doc: str, default: Any = None, *, least: int | None = None,
                 most: int | None = None, what: str = "a whole number", **kw: Any) -> None:
        super().__init__(name, doc, default, **kw)
        self.least, self.most, self.what = least, most, what

    @property
    def type_text(self) -> str:  # type: ignore[override]
        if self.least is not None and self.most is not None:
            return f"integer {self.least}–{self.most}"
        return "integer" if self.least is None else f"integer ≥ {self.least}"

    def check(self, value: Any, root: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected {self.what}, got {value!r}")
        if self.most is not None and not self.least <= value <= self.most:
            raise ValueError(f"expected {self.least} to {self.most}, got {value}")
        if self.least is not None and value < self.least:
            raise ValueError(f"expected at least {self.least}, got {value}")
        return value


class Flag(Option):
    type_text = "boolean"

    def check(self, value: Any, root: Path) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value


class Table(Option):
    type_text = "table"

    def check(self, value: Any, root: Path) -> dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {value!r}")
        return value


class Strings(Option):
    type_text = "list of strings"

    def check(self, value: Any, root: Path) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(value)


class Inputs(Strings):
    """Files or glob patterns relative to the board file's folder, made absolute."""

    def check(self, value: Any, root: Path) -> tuple[str, ...]:
        return tuple(os.path.normpath(os.path.join(root, p)) for p in super().check(value, root))


class Formats(Strings):
    type_text = "list"

    def check(self, value: Any, root: Path) -> tuple[str, ...]:
        formats = super().check(value, root)
        if "png" not in formats or not set(formats) <= set(FORMATS):
            raise ValueError(f"expected a list with 'png' and optionally 'svg', got {value!r}")
        return formats


class Size(Option):
    type_text = "`[width, height]`"

    def check(self, value: Any, root: Path) -> tuple[float, float]:
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                           for v in value)):
            raise ValueError(f"expected [width, height] in inches, got {value!r}")
        return float(value[0]), float(value[1])


class Plot(Option):
    """'module:function', located (not imported) now; gives the pair (plot, plot_file)."""

    type_text = '`"module:function"`'

    def check(self, value: Any, root: Path) -> tuple[str, Path | None]:
        plotfunc.parse(value)
        return value, plotfunc.locate(value, root)


class Window(NamedTuple):
    """One time window of a chart: its name as the board file writes it ("7d"), its length in
    seconds, and the least time between two renders of it when it is not the first window."""

    name: str
    seconds: float
    interval: float


WINDOW_NAME_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w)\Z")
WINDOW_SHARE = 288  # a later window renders at most once per window ÷ 288 (1d: 5 min), as MRTG/Munin do


class Windows(Option):
    """`["1d", "7d"]`, or `{ "1d" = "1m", "7d" = "30m" }` giving each window's interval."""

    type_text = "list of durations, or table"

    def check(self, value: Any, root: Path) -> tuple[Window, ...]:
        if isinstance(value, list):
            pairs = [(name, None) for name in value]
        elif isinstance(value, dict):
            pairs = list(value.items())
        else:
            raise ValueError(f"expected a list of durations like [\"1d\", \"7d\"] or a table like "
                             f"{{ \"1d\" = \"1m\", \"7d\" = \"30m\" }}, got {value!r}")
        if not pairs:
            raise ValueError("expected at least one window")
        windows: list[Window] = []
        problems: list[str] = []  # every entry is checked: all that is wrong is reported at once
        for name, interval in pairs:
            try:
                window = self._window(name, interval)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            same = next((other for other in windows if other.seconds == window.seconds), None)
            if same is not None:
                problems.append(f"duplicate window {name!r} (the same as {same.name!r})")
                continue
            windows.append(window)
        if problems:
            raise Problems(problems)
        return tuple(windows)

    @staticmethod
    def _window(name: Any, interval: Any) -> Window:
        """One entry: its name, and its interval (None: the default share of the window)."""
        if not isinstance(name, str) or not WINDOW_NAME_RE.match(name):
            raise ValueError(f"expected a window like \"1d\" or \"7d\" (digits and ms, s, m, h, d or w, "
                             f"no spaces), got {name!r}")
        seconds = parse_duration(name)
        if interval is None:
            return Window(name, seconds, max(seconds / WINDOW_SHARE, MIN_INTERVAL))
        try:
            every = parse_duration(interval)
        except ValueError as exc:
            raise ValueError(f"window {name!r}: interval: {exc}") from None
        if every < MIN_INTERVAL:
            raise ValueError(f"window {name!r}: interval: expected at least {MIN_INTERVAL * 1000:g}ms, "
                             f"got {interval!r}")
        if every > seconds:
            raise ValueError(f"window {name!r}: interval {interval!r} is longer than the window")
        return Window(name, seconds, every)


class Foreach(Text):
    """A glob relative to the board file's folder (checked here; expanded by renderer.board.families)."""

    type_text = "glob"

    def check(self, value: Any, root: Path) -> str:
        pattern = super().check(value, root)
        if not pattern.strip():
            raise ValueError("expected a glob pattern like 'data/disk-*.csv', got an empty string")
        return pattern


def non_finite(value: Any, where: str = "") -> list[tuple[str, float]]:
    """The path (`.x`, `[1]`) and value of every inf or nan inside a board-file value.

    TOML writes them as `inf` and `nan`, and `1e400` reads as inf; none has a place in a
    board (status.json, the plot's parameters, sizes and intervals all need real numbers).
    """
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(where, value)]
    if isinstance(value, dict):
        items, step = value.items(), ".{}".format
    elif isinstance(value, list):
        items, step = enumerate(value), "[{}]".format
    else:
        return []
    found = []
    for key, item in items:
        if isinstance(item, (float, dict, list)):  # the path is made only for what may hold a float
            found.extend(non_finite(item, where + step(key)))
    return found
