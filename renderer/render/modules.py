"""The board's own Python modules, imported in workers (which files each chart used is kept
by renderer.store.module_use).

A board module (a .py file under the board's folder) is imported the ordinary
way, so packages and relative imports work (`mycharts:cpu`, `mycharts.lines:cpu`), but:

- it is compiled from its source every time it is loaded, never from a `.pyc` (a cache keyed
  by mtime seconds can hide an edit made within the same second) and no `.pyc` is written into
  the board's folder;
- before each render, if the source of any board module this worker loaded changed (or the
  board is another one), every board module is dropped from `sys.modules`, so the render, and
  every later one, runs the new code, helpers included;
- a render records which board files its plot used (the plot module, what it imports, at load
  or while drawing, and their packages) with the digest of the source that ran.

Light: no matplotlib. Every worker imports it.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from renderer.readfile import SOURCE_LIMIT, read_file
from renderer.render.digests import file_digest

_root: str | None = None  # the board folder whose modules are loaded
_digests: dict[str, str] = {}  # file -> sha256 of the source compiled from it
_deps: dict[str, frozenset[str]] = {}  # board module name -> the board files its execution used
_stack: list[set[str]] = []  # files used by the render and the module executions in progress
_original_import = builtins.__import__


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """A board module's loader: compiles from source, records what its execution imported."""

    def path_stats(self, path: str) -> dict:
        raise OSError("board modules are compiled from source")  # no .pyc read, none written

    def get_data(self, path: str) -> bytes:
        if path != self.path:
            return super().get_data(path)
        data = read_file(path, SOURCE_LIMIT)  # a FIFO swapped in fails the import, naming it, never hangs
        _digests[path] = hashlib.sha256(data).hexdigest()
        return data

    def exec_module(self, module) -> None:
        used = {self.path}
        _stack.append(used)
        try:
            super().exec_module(module)
        finally:
            _stack.pop()
            _deps[module.__name__] = frozenset(used)
            if _stack:
                _stack[-1].update(used)


class _BoardFinder:
    """First on sys.meta_path: board modules get _SourceLoader; anything else is left alone."""

    @classmethod
    def find_spec(cls, name: str, path=None, target=None):
        if _root is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if (spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader)
                or not spec.origin or not _under(spec.origin, _root)):
            return None
        spec.loader = _SourceLoader(name, spec.origin)
        return spec

    @classmethod
    def invalidate_caches(cls) -> None:
        pass


def _under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def _note(name: str) -> None:
    """The running frame used board module `name` (and the packages above it)."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        used = _deps.get(".".join(parts[:i]))
        if used:
            _stack[-1].update(used)


def _tracking_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = _original_import(name, globals, locals, fromlist, level)
    if _stack:
        try:
            absolute = importlib.util.resolve_name("." * level + name, (globals or {}).get("__package__") or "") \
                if level else name
        except (ImportError, ValueError):
            return module
        _note(absolute)
        for item in fromlist or ():
            _note(f"{absolute}.{item}")
    return module


def _use_board(root: str) -> None:
    """Make `root`'s modules importable and current: drop them all if any changed."""
    global _root
    if _BoardFinder not in sys.meta_path:
        sys.meta_path.insert(0, _BoardFinder)
    stale = root != _root or any(file_digest(path) != d for path, d in _digests.items())
    if stale and _deps:
        for name in list(_deps):
            sys.modules.pop(name, None)
        _deps.clear()
        _digests.clear()
        importlib.invalidate_caches()
    if root != _root:
        if _root in sys.path:
            sys.path.remove(_root)
        _root = root
    if root not in sys.path:
        sys.path.insert(0, root)


@contextmanager
def tracking(root: str) -> Iterator[dict[str, str]]:
    """Around one render: the board's modules made current first; yields a dict that is filled,
    on the way out, with the board files the render used and the digests of what ran."""
    _use_board(root)
    used: set[str] = set()
    _stack.append(used)
    builtins.__import__ = _tracking_import
    report: dict[str, str] = {}
    try:
        yield report
    finally:
        builtins.__import__ = _original_import
        _stack.pop()
        report.update({path: _digests[path] for path in sorted(used) if path in _digests})


def in_use(earlier: frozenset[str] = frozenset()) -> set[str]:
    """The board files the render in progress used so far, `earlier` added to them: a retained
    plot's later renders use what its first render imported (renderer.render.retained)."""
    if not _stack:
        return set(earlier)
    _stack[-1].update(earlier)
    return set(_stack[-1])


def tracking_now() -> bool:
    return bool(_stack)


def import_plot_module(name: str):
    """Import a plot's module (inside tracking()), noting what it uses even when cached."""
    module = importlib.import_module(name)
    if _stack:
        _note(name)
    return module
