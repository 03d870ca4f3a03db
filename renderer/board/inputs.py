"""Expanding a chart's input patterns into files: glob's rules, without its hazards.

`glob.glob(recursive=True)` follows symlinks to folders, so `ln -s . loop` hands a plot the same
file dozens of times and two such links never finish. This walker keeps glob's matching rules
(wildcards and `**` skip hidden names; `**` is zero or more folders) but:

- follows a symlink to a folder only if that folder was not visited yet in this expansion (by
  device and inode), so no loop is ever followed and no folder is walked twice;
- gives each real file (device, inode) at most once, under the first path that reached it
  (folders are walked in sorted order, the files of a folder before its subfolders);
- never enters the output folder or `.plotboard/`: plotboard's own files are never inputs;
- stops after MAX_INPUTS matches or MAX_SCANNED folder entries, the limits of one chart's
  expansion: the chart then fails with TooManyInputs instead of hanging (`inputs = ["/**/*"]`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from renderer.text import readable

if TYPE_CHECKING:
    from renderer.board.model import Chart

MAX_INPUTS = 10_000  # files one chart's patterns may match
MAX_SCANNED = 100_000  # folder entries one chart's expansion may look at

_MAGIC = re.compile(r"[*?[]")


class TooManyInputs(Exception):
    """A chart's patterns matched (or made plotboard look at) more files than the limits allow."""


def is_pattern(path: str) -> bool:
    """Whether an input is a glob pattern rather than one file's path."""
    return _MAGIC.search(path) is not None


class _Walk:
    """One chart's expansion: what was visited, what was found, and the budget left."""

    def __init__(self, excluded: list[str], pattern_text: str, per: str = "chart") -> None:
        self.per = per  # whose limits they are, as the messages say it: "chart", "family"
        self.excluded_folders = excluded
        self._excluded: set[tuple[int, int]] | None = None  # their identities, taken when a pattern first needs them
        self.seen_files: set[tuple[int, int]] = set()
        self.found: list[str] = []
        self.stats: dict[str, tuple[int, int]] = {}  # found file -> (size, mtime_ns)
        self.scanned = 0
        self.pattern_text = pattern_text
        self._listed: dict[str, list[os.DirEntry]] = {}  # `**` then a wildcard lists a folder twice

    def add_file(self, path: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if key in self.seen_files:
            return
        self.seen_files.add(key)
        self.found.append(path)
        self.stats[path] = (st.st_size, st.st_mtime_ns)
        if len(self.found) > MAX_INPUTS:
            raise TooManyInputs(f"{self.pattern_text} match more than {MAX_INPUTS:,} files, the limit per {self.per}; "
                                "narrow the patterns")

    def entries(self, folder: str) -> list[os.DirEntry]:
        """The folder's entries, unsorted (callers sort what they keep), listed once a walk."""
        listed = self._listed.get(folder)
        if listed is not None:
            return listed
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            return []
        self.scanned += len(entries)
        if self.scanned > MAX_SCANNED:
            raise TooManyInputs(f"{self.pattern_text} made plotboard look at more than {MAX_SCANNED:,} files and "
                                f"folders, the limit per {self.per}; narrow the patterns")
        self._listed[folder] = entries
        return entries

    def enterable(self, folder: str) -> tuple[int, int] | None:
        """The folder's identity if it may be entered: a folder, not plotboard's own."""
        if self._excluded is None:
            self._excluded = {i for i in map(_ident, self.excluded_folders) if i is not None}
        ident = _ident(folder)
        if ident is None or ident in self._excluded:
            return None
        return ident


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return st.st_dev, st.st_ino


def expand(patterns: Iterable[str], excluded: Iterable[str] = (),
           stats: dict[str, tuple[int, int]] | None = None, *, per: str = "chart", shown: str | None = None) -> list[str]:
    """The existing files the patterns name or match, each real file once, sorted.

    `patterns` are absolute paths or glob patterns; `excluded` are folders whose files never
    count (the output folder and `.plotboard/`). Raises TooManyInputs beyond the limits (its
    message names the patterns, or `shown`, and says whose limits they are: `per`). `stats`, if
    given, gets each file's (size, mtime_ns) as the expansion saw it. A chart's inputs and a
    family's `foreach` (renderer.board.families) are expanded by this one function.
    """
    patterns = list(patterns)
    excluded = [_real_folder(f) for f in excluded]
    walk = _Walk(excluded, shown or ", ".join(repr(p) for p in patterns if is_pattern(p)) or "the inputs", per)
    for pattern in patterns:
        if is_pattern(pattern):
            _expand_glob(walk, pattern)
            continue
        try:
            lst = os.lstat(pattern)
            st = os.stat(pattern) if stat.S_ISLNK(lst.st_mode) else lst
        except OSError:
            continue
        real = os.path.realpath(pattern) if stat.S_ISLNK(lst.st_mode) else _real_file(pattern)
        if stat.S_ISREG(st.st_mode) and not _inside(real, excluded):
            walk.add_file(pattern, st)
    if stats is not None:
        stats.update(walk.stats)
    return sorted(walk.found)


RESOLVED_FOR = 1.0  # seconds a folder's resolved path is reused while the folder stays the same
_resolved: dict[str, tuple[tuple[int, int] | None, str, float]] = {}  # folder -> (identity, real path, when)


def _real_folder(folder: str) -> str:
    """os.path.realpath of a folder, reused for a second while the folder is the same one (by
    device and inode): every chart excludes the same two folders and most share their inputs'
    folders, and a realpath costs a lstat per path component."""
    ident, now = _ident(folder), time.monotonic()
    known = _resolved.get(folder)
    if known is not None and ident is not None and known[0] == ident and now - known[2] < RESOLVED_FOR:
        return known[1]
    if len(_resolved) > 65536:
        _resolved.clear()
    real = os.path.realpath(folder)
    _resolved[folder] = (ident, real, now)
    return real


def _real_file(path: str) -> str:
    """os.path.realpath of a file that is not a symlink itself: its folder's real path, and its name."""
    folder, name = os.path.split(path)
    return os.path.join(_real_folder(folder), name) if folder and name not in ("", ".", "..") else os.path.realpath(path)


def _inside(real: str, folders: list[str]) -> bool:
    return any(real == f or real.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def _expand_glob(walk: _Walk, pattern: str) -> None:
    parts = pattern.split(os.sep)
    first = next(i for i, p in enumerate(parts) if is_pattern(p))
    base = os.sep.join(parts[:first]) or os.sep
    if walk.enterable(base) is None:
        return
    # A literal prefix may itself pass through an excluded folder (e.g. "public/x/*").
    if any(walk.enterable(os.sep.join(parts[:i]) or os.sep) is None for i in range(1, first)):
        return
    _match(walk, base, parts[first:])


def _match(walk: _Walk, folder: str, parts: list[str]) -> None:
    """Files below `folder` matching the pattern's remaining `parts`."""
    head, rest = parts[0], parts[1:]
    if head == "**":
        _double_star(walk, folder, rest)
        return
    if is_pattern(head):
        match = _compiled(head)
        hidden_ok = head.startswith(".")  # like glob: wildcards never match hidden names
        names = sorted(e.name for e in walk.entries(folder) if match(e.name) and (hidden_ok or e.name[0] != "."))
    else:
        names = [head]  # a literal part is looked up, not listed
    for name in names:
        path = os.path.join(folder, name)
        if rest:
            if walk.enterable(path) is not None:
                _match(walk, path, rest)
        else:
            _maybe_file(walk, path)


def _double_star(walk: _Walk, top: str, rest: list[str]) -> None:
    """`**` followed by `rest`: `rest` matched in `top` and every folder below it, each real
    folder once (a symlink to a folder already visited, a loop among them, is not followed)."""
    visited: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        folder = stack.pop()
        ident = walk.enterable(folder)
        if ident is None or ident in visited:
            continue
        visited.add(ident)
        if rest:  # a trailing "**" matches folders only, like glob: no files
            _match(walk, folder, rest)
        subfolders = []
        for entry in sorted(walk.entries(folder), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue  # like glob: ** never descends into hidden folders
            try:
                if entry.is_dir():  # follows a symlink; `visited` stops loops
                    subfolders.append(os.path.join(folder, entry.name))
            except OSError:
                continue
        stack.extend(reversed(subfolders))


@lru_cache(maxsize=1024)
def _compiled(part: str):
    return re.compile(fnmatch.translate(part)).match


def _maybe_file(walk: _Walk, path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode):
        walk.add_file(path, st)


def pattern_base(pattern: str) -> tuple[str, bool]:
    """The folder to watch for an input path or glob pattern, and whether recursively."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if is_pattern(part):
            return os.sep.join(parts[:i]) or os.sep, i < len(parts) - 1
    return os.path.dirname(pattern) or os.sep, False


def glob_match(pattern: str, path: str) -> bool:
    """Whether `expand` could find the file `path` for `pattern`: the same rules, checked on one
    path (the watcher asks it of each changed file) instead of walking the folders."""
    return _glob_match(pattern.split(os.sep), path.split(os.sep))


def _glob_match(pp: list[str], sp: list[str]) -> bool:
    if not pp:
        return not sp
    head = pp[0]
    if head == "**":
        if len(pp) == 1:
            return False  # a trailing "**" matches folders only, as in _double_star: no file
        for i in range(len(sp)):
            if i > 0 and sp[i - 1].startswith("."):
                break  # ** never descends into hidden folders
            if _glob_match(pp[1:], sp[i:]):
                return True
        return False
    if not sp:
        return False
    if is_pattern(head):
        if sp[0].startswith(".") and not head.startswith("."):
            return False  # wildcards never match hidden names
        if not _compiled(head)(sp[0]):
            return False
    elif head != sp[0]:
        return False
    return _glob_match(pp[1:], sp[1:])


def waiting_for(chart: Chart, root: Path) -> list[str]:
    """The chart's literal inputs (not patterns) that are not there (yet), relative to `root`,
    the board file's folder: a typo, or a file a producer has not written yet; one that is there
    but no regular file (a FIFO, a folder, a device) with what it is: `data/x (a FIFO, not a
    regular file)`. As people read them: a byte of a name that is not UTF-8 is shown as U+FFFD."""
    return [path if kind is None else f"{path} ({kind}, not a regular file)" for path, kind in unready(chart, root)]


def unready(chart: Chart, root: Path) -> list[tuple[str, str | None]]:
    """Each literal input that is no regular file, as waiting_for shows its path, with what is
    there instead (None: nothing)."""
    return [(readable(os.path.relpath(path, root)), kind) for path in chart.inputs
            if not is_pattern(path) and (kind := not_a_file(path)) is not False]


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def not_a_file(path: str) -> str | None | bool:
    """False when `path` is a regular file (through links); None when nothing is there (or it
    cannot be looked at); else what it is instead ("a FIFO", "a folder"...)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return False
    return next((kind for test, kind in _KINDS if test(mode)), "not a file")
