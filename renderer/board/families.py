"""Families (`foreach`): one chart per file a glob matches, expanded into ordinary charts when the
board file is read (at every `build`, and again under `run` whenever a matching file appears
or goes), and time windows (`windows`): one internal chart per window.

The glob is expanded by renderer.board.inputs.expand, as a chart's inputs are: each real file
once, no symlink loop followed, plotboard's own folders (output, state) never entered, the same
limits. A member's name comes from the family's `name` with its placeholders replaced: `{match}`
(the text the wildcards matched), `{stem}` (the file name without extension) and `{path}` (the
file, relative to the board file), each lowercased in `name` and every run of characters
outside [a-z0-9_-] made one `-`. The same placeholders are replaced in `title`, `description`,
`inputs` and string `params`.

Here the file names become text, and it is decided once what each place gets (member_table):
`inputs` gets the file's own name with glob's wildcards escaped (a file named `disk-[x].csv` is
that file, not `disk-x.csv`); the other keys get it as people read it, a byte that is not UTF-8
made U+FFFD. A file whose name cannot be a chart's (a clash with another chart or member, a
name too long for its files, not a name at all) becomes a Failed entry of its own: it never
stops the board (settle).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from renderer.board.inputs import TooManyInputs, expand as expand_patterns
from renderer.board.kinds import NAME_RE
from renderer.board.model import MAX_NAME, Failed, name_problem
from renderer.board.options import CHART
from renderer.text import one_line, readable

if TYPE_CHECKING:
    from renderer.board.model import Board, Chart

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
KNOWN = ("match", "stem", "path")
SUBSTITUTED = ("name", "title", "description", "inputs", "params")
SLUG_RE = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class Family:
    """A family as the board file writes it: its unexpanded name, its glob (as written), the
    names of the charts it yields now (none when the glob matches nothing), and of its failed
    entries (renderer.board.model.Failed)."""

    name: str
    foreach: str
    members: tuple[str, ...]
    paths: tuple[str, ...] = ()  # every file the glob matches, relative to the board file's folder
    failed: tuple[str, ...] = ()
    problem: str | None = None  # the glob went past its limits (TooManyInputs): no members
    group: str | None = None  # the family's `group`: the section its members (or, with none, the family) show in


@dataclass
class Expansion:
    """One family's members as its own files give them, before the board's names are settled."""

    where: str  # "charts[0] (disk-{match})"
    name: str
    foreach: str
    members: list[tuple["Chart", str]]  # each chart with the file it came from
    paths: tuple[str, ...] = ()
    failed: list[Failed] = field(default_factory=list)
    problem: str | None = None
    group: str | None = None


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


def matches(root: Path, pattern: str, excluded: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The files the glob matches, relative to `root` (the board file's folder), sorted, with the
    rules of a chart's inputs (renderer.board.inputs.expand): never a file of the `excluded`
    folders (the output folder and the state folder). Raises TooManyInputs past the limits."""
    found = expand_patterns([os.path.normpath(os.path.join(root, pattern))], excluded, per="family",
                            shown=repr(pattern))
    # What os.path.relpath gives for a path below the root, at a fifth of its cost (most of a
    # 10,000-file family's look every 5 s under `run` went to relpath).
    below = os.path.join(os.path.normpath(root), "")
    return sorted(p[len(below):] if p.startswith(below) else os.path.relpath(p, root) for p in found)


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
    """The family's table (foreach removed) for one matched file, placeholders replaced: in
    `inputs` by the file's own name, glob's wildcards escaped; elsewhere as people read it (a
    byte that is not UTF-8 made U+FFFD), and in `name` lowercased with other runs made '-'."""
    own = {"match": match_text(pattern, path), "stem": Path(path).stem, "path": path}
    shown = {k: readable(v) for k, v in own.items()}
    out = {k: v for k, v in table.items() if k != "foreach"}
    for key in SUBSTITUTED:
        if key in out:
            out[key] = _replace(out[key], {k: glob.escape(v) for k, v in own.items()} if key == "inputs" else shown)
    if isinstance(table.get("name"), str):
        out["name"] = _replace(table["name"], {k: slug(v) for k, v in shown.items()})
    return out


def expand(
    where: str, table: dict, root: Path, excluded: tuple[str, ...], add: Callable[[str, str], None],
    load: Callable[[str, dict, frozenset[str]], "Chart | None"],
) -> Expansion | None:
    """A family's members, each with the file it came from, and the files that cannot be members
    (Failed; their names are made unique by settle); problems of the family itself go to
    `add(where, message)` (the board file is wrong: exit 2).

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
    example = load(where, member_table(table, pattern if isinstance(pattern, str) else "*", "example/example.csv"), said)
    if example is None or problems or not isinstance(pattern, str) or not isinstance(name, str):
        return None
    literal = name_problem(PLACEHOLDER_RE.sub("", name), example.windows)
    if literal:
        add(f"{where}.name", f"{literal} (without its placeholders)")
        return None
    expansion = Expansion(where, name, pattern, [], group=example.group)
    try:
        paths = matches(root, pattern, excluded)
    except TooManyInputs as exc:
        expansion.problem = f"TooManyInputs: foreach {exc}"
        wanted = slug(PLACEHOLDER_RE.sub("", name)).strip("-_") or "family"
        expansion.failed.append(_failed(expansion, example, wanted, name, expansion.problem))
        return expansion
    expansion.paths = tuple(paths)
    for path in paths:
        member = member_table(table, pattern, path)
        shown = _shown(path)
        why = (f"BadName: {shown} gives the name {member['name']!r}, which is not a chart name "
               "([a-z0-9][a-z0-9_-]*)" if not NAME_RE.match(member["name"]) else None)
        if why is None and (too_long := name_problem(member["name"], example.windows)):
            why = f"NameTooLong: {shown} gives a name that is {too_long}"
        if why:
            expansion.failed.append(_failed(expansion, example, member["name"], member.get("title", ""), why))
            continue
        chart = load(f"{where} [{readable(path)}]", member, frozenset())
        if chart is not None:
            expansion.members.append((dataclasses.replace(chart, family=name), path))
    return expansion


def _shown(path: str) -> str:
    """A file's name in an error: as people read it (U+FFFD for a byte that is not UTF-8), on
    one line whatever it holds."""
    return one_line(readable(path))


def _failed(expansion: Expansion, example: "Chart", name: str, title: Any, error: str) -> Failed:
    return Failed(name=name, title=title if isinstance(title, str) and title else name, error=error,
                  family=expansion.name, where=expansion.where, group=example.group, pixels=example.pixels)


def settle(expansions: list[Expansion], taken: dict[str, str]) -> tuple[list[Family], list[Failed]]:
    """Every family's members once the board's names are known: `taken` are the names of the
    board file's own charts (name -> "charts[N] (name)"). A member whose name one of them has,
    and every member of a name two files give, is left out and shown as a Failed entry naming
    the files (and the chart); each Failed entry gets a name no chart has. Only those members
    are left out: the rest of the board, their families' other members included, is as usual.
    """
    claims: dict[str, list[tuple[Expansion, "Chart", str]]] = {}
    for e in expansions:
        for chart, path in e.members:
            claims.setdefault(chart.name, []).append((e, chart, path))
    out: dict[int, set[str]] = {}
    for name, claimants in claims.items():
        if name not in taken and len(claimants) == 1:
            continue
        files = [_shown(path) for _, _, path in claimants]
        listed = " and ".join([", ".join(files[:-1]), files[-1]] if len(files) > 1 else files)
        if name in taken:
            error = f"NameClash: {listed} give{'s' if len(files) == 1 else ''} the name {name!r}, which {taken[name]} has"
        else:
            error = (f"NameClash: {listed} {'both' if len(files) == 2 else 'all'} give the name {name!r}; "
                     f"{'neither' if len(files) == 2 else 'none'} is shown")
        first, chart, _ = claimants[0]
        first.failed.append(Failed(name=name, title=chart.title, error=error, family=first.name, where=first.where,
                                   group=chart.group, pixels=chart.pixels))
        for e, _, _ in claimants:
            out.setdefault(id(e), set()).add(name)
    names = set(taken) | {c.name for e in expansions for c, _ in e.members if c.name not in out.get(id(e), ())}
    families, failed = [], []
    for e in expansions:
        e.members = [(c, p) for c, p in e.members if c.name not in out.get(id(e), ())]
        e.failed = [dataclasses.replace(f, name=_unique(f.name, f.error, names)) for f in e.failed]
        failed.extend(e.failed)
        families.append(Family(e.name, e.foreach, tuple(c.name for c, _ in e.members), e.paths,
                               tuple(f.name for f in e.failed), e.problem, e.group))
    return families, failed


def _unique(wanted: str, key: str, taken: set[str]) -> str:
    """`wanted` if it is a chart name no chart has (and not too long), else one made from it and
    a digest of `key` (the error, which names the files): stable from one load to the next."""
    if NAME_RE.match(wanted) and len(wanted) <= MAX_NAME and wanted not in taken:
        taken.add(wanted)
        return wanted
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    base = SLUG_RE.sub("-", wanted.lower()).lstrip("-_")[:MAX_NAME - 20] or "member"
    name, n = f"{base}-{digest[:8]}", 1
    while name in taken:
        n += 1
        name = f"{base}-{digest[:8]}-{n}"
    taken.add(name)
    return name


def members_changed(board: "Board") -> bool:
    """Whether some family's glob now matches other files than when the board was expanded (or
    went past its limits, or came back within them)."""
    excluded = (str(board.output), str(board.state_dir))
    for f in board.families:
        try:
            paths = tuple(matches(board.root, f.foreach, excluded))
        except TooManyInputs:
            if f.problem is None:
                return True
            continue
        if f.problem is not None or paths != f.paths:
            return True
    return False


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
