"""Which board files (plot modules, helpers) each chart's last render used, by board folder and
chart, as its render reported them (renderer.render.modules tracks them in the worker).

They are kept here in the daemon or build (and in each record in `.plotboard/state.json`):
renderer.store.fingerprints digests them, renderer.daemon.watch watches their folders, so an edit
to a helper re-renders the charts that use it, in `build` and `run`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_used: dict[str, dict[str, dict[str, str]]] = {}  # board root -> chart -> {file: digest}
_users: dict[str, dict[str, set[str]]] = {}  # board root -> file -> charts that used it


def remember(root: str, chart: str, files: dict[str, str]) -> None:
    forget(root, chart)
    _used.setdefault(root, {})[chart] = dict(files)
    users = _users.setdefault(root, {})
    for path in files:
        users.setdefault(path, set()).add(chart)


def forget(root: str, chart: str) -> None:
    old = _used.get(root, {}).pop(chart, None)
    users = _users.get(root, {})
    for path in old or ():
        users.get(path, set()).discard(chart)
        if not users.get(path):
            users.pop(path, None)


def used_by(root: str, chart: str) -> dict[str, str]:
    """The board files the chart's last render used, with the digests of what ran."""
    return _used.get(root, {}).get(chart, {})


def charts_using(root: str, path: str) -> set[str]:
    return _users.get(root, {}).get(path, set())


def folders(root: str, charts: Iterable[str]) -> set[str]:
    """The folders holding the files these charts used."""
    board = _used.get(root, {})
    return {os.path.dirname(path) for chart in charts for path in board.get(chart, {})}


def all_folders(root: str) -> set[str]:
    """The folders holding the files any chart of the board used (as `folders` for them all,
    at the cost of the files, not of the charts)."""
    return {os.path.dirname(path) for path, users in _users.get(root, {}).items() if users}
