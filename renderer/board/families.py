"""Families (`foreach`): one chart per file a glob matches, expanded into ordinary charts when the
board file is read (at every `build`, and again under `run` whenever a matching file appears
or goes), and time windows (`windows`): one internal chart per window.

A member's name comes from the family's `name` with its placeholders replaced: `{match}` (the
text the wildcards matched), `{stem}` (the file name without extension) and `{path}` (the
file, relative to the board file), each lowercased in `name` and every run of characters
outside [a-z0-9_-] made one `-`. The same placeholders are replaced in `title`,
`description`, `inputs` and string `params`.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from renderer.board.options import CHART

if TYPE_CHECKING:
    from renderer.board.model import Board, Chart

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
KNOWN = ("match", "stem", "path")
SUBSTITUTED = ("name", "title", "description", "inputs", "params")
SLUG_RE = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class Family:
    """A family as the board file writes it: its unexpanded name, its glob (as written) and the
    names of the charts it yields now (none when the glob matches nothing)."""

    name: str
    foreach: str
    members: tuple[str, ...]
    paths: tuple[str, ...] = ()  # the files they came from, relative to the board file's folder


def slug(text: str) -> str:
    """'Disk SDA/1' -> 'disk-sda-1'."""
    return SLUG_RE.sub("-", text.lower())


def match_text(pattern: str, path: str) -> str:
    """What the wildcards of `pattern` matched in `path` (both relative, as written): the path
    without the pattern's literal text before the first wildcard and after the last one."""
    magic = [i for i, ch in enumerate(pattern) if ch in "*?["]
    if not magic:
        return Path(path).stem
    prefix = pattern[:magic[0]]
    last = max(i for i, ch in enumerate(pattern) if ch in "*?]")
    suffix = pattern[last + 1:]
    if path.startswith(prefix) and path.endswith(suffix) and len(path) >= len(prefix) + len(suffix):
        return path[len(prefix):len(path) - len(suffix)]
    return Path(path).stem


def matches(root: Path, pattern: str) -> list[str]:
    """The files the glob matches, relative to `root` (the board file's folder), sorted."""
    found = glob.glob(os.path.join(root, pattern), recursive=True)
    return sorted(os.path.relpath(p, root) for p in found if os.path.isfile(p))


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    """(where, text) of every string inside a value."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{where}.{k}")]
    return []


def placeholder_problems(table: dict) -> list[tuple[str, str]]:
    """(key, message) for each unknown placeholder, and for a `name` without one."""
    problems = []
    for key in SUBSTITUTED:
        for where, text in _strings(table.get(key), key):
            for found in PLACEHOLDER_RE.findall(text):
                if found not in KNOWN:
                    problems.append((where, f"unknown placeholder {{{found}}} (known: {{match}}, {{stem}}, {{path}})"))
    name = table.get("name")
    if isinstance(name, str) and not any(f"{{{k}}}" in name for k in KNOWN):
        problems.append(("name", "a family (foreach) needs a placeholder in its name, like \"disk-{match}\" "
                                 "({match}, {stem} or {path}), so that each file gets a chart of its own"))
    return problems


def _replace(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_replace(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, values) for k, v in value.items()}
    return value


def member_table(table: dict, pattern: str, path: str) -> dict:
    """The family's table (foreach removed) for one matched file, placeholders replaced."""
    values = {"match": match_text(pattern, path), "stem": Path(path).stem, "path": path}
    out = {k: v for k, v in table.items() if k != "foreach"}
    for key in SUBSTITUTED:
        if key in out:
            out[key] = _replace(out[key], values)
    if isinstance(table.get("name"), str):
        out["name"] = _replace(table["name"], {k: slug(v) for k, v in values.items()})
    return out


def expand(
    where: str, table: dict, root: Path, add: Callable[[str, str], None],
    load: Callable[[str, dict, frozenset[str]], "Chart | None"],
) -> tuple[Family | None, list[tuple["Chart", str]]]:
    """A family's charts, each with the file it came from; problems go to `add(where, message)`.

    The table is checked once with made-up values, so a family that matches nothing yet is
    checked too, and a mistake is reported once rather than once per file. It is checked
    whatever is wrong with its name, placeholders or glob, so every mistake is reported at
    once (`load`'s third argument: the keys whose problems were reported already).
    """
    pattern = table.get("foreach")
    name = table.get("name")
    problems = placeholder_problems(table)
    try:
        CHART["foreach"].check(pattern, root)
    except ValueError as exc:
        problems.append(("foreach", str(exc)))
    for key, message in problems:
        add(f"{where}.{key}", message)
    said = frozenset(re.split(r"[.\[]", key, maxsplit=1)[0] for key, _ in problems)
    example = member_table(table, pattern if isinstance(pattern, str) else "*", "example/example.csv")
    if load(where, example, said) is None or problems or not isinstance(pattern, str) or not isinstance(name, str):
        return None, []
    charts: list[tuple[Chart, str]] = []
    by_name: dict[str, str] = {}
    for path in matches(root, pattern):
        chart = load(f"{where} [{path}]", member_table(table, pattern, path), frozenset())
        if chart is None:
            continue
        if chart.name in by_name:
            add(f"{where}.name", f"{by_name[chart.name]} and {path} both give the name {chart.name!r}")
            continue
        by_name[chart.name] = path
        charts.append((dataclasses.replace(chart, family=name), path))
    return Family(name, pattern, tuple(c.name for c, _ in charts), tuple(p for _, p in charts)), charts


def members_changed(board: "Board") -> bool:
    """Whether some family's glob now matches other files than when the board was expanded."""
    return any(tuple(matches(board.root, f.foreach)) != f.paths for f in board.families)


def windowed(chart: "Chart") -> list["Chart"]:
    """A chart as the daemon and `build` handle it: one internal chart per window.

    The first window keeps the chart's name (and also publishes NAME.WINDOW.png); each later
    one is named NAME.WINDOW (so its image is NAME.WINDOW.png), is rate-limited to its window's
    interval, and may be that interval older before it counts as stale.
    """
    if not chart.windows:
        return [chart]
    first = dataclasses.replace(chart, window=chart.windows[0])
    later = [dataclasses.replace(chart, name=f"{chart.name}.{w.name}", window=w, window_of=chart.name,
                                 stale_after=None if chart.stale_after is None else chart.stale_after + w.interval)
             for w in chart.windows[1:]]
    return [first, *later]
