"""The `plot = "module:function"` contract, both halves of it.

At load time the daemon only *locates* the module and checks, without importing it, that it
defines the function: importing runs user code and matplotlib, which the daemon never does.
In a render worker the module is *loaded* and the function returned.

This module stays light (no matplotlib): the loader and every worker import it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from renderer.jobs import RenderJob

PLOT_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*\Z")


def parse(plot: object) -> tuple[str, str]:
    """Split "module:function" into its two names; ValueError when it is not of that shape."""
    if not isinstance(plot, str) or not PLOT_RE.match(plot):
        raise ValueError(f"expected 'module:function', got {plot!r}")
    module, _, function = plot.partition(":")
    return module, function


# --- load time: find the source, never import it ------------------------------------------


def find_plot_file(plot: str, root: Path) -> Path | None:
    """The source file of a plot's module, looked up next to the board file first.

    Raises ValueError when the module cannot be found, cannot be parsed, or (for a source
    module) defines no such function. The module is not imported: that happens in a worker.
    """
    module, _, function = plot.partition(":")
    spec = None
    search: list[str] | None = [str(root)]
    for i, part in enumerate(module.split(".")):
        spec = importlib.machinery.PathFinder.find_spec(part, search)
        if spec is None:
            break
        search = spec.submodule_search_locations
        if search is None and i < len(module.split(".")) - 1:
            spec = None
            break
    if spec is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
    if spec is None:
        raise ValueError(f"cannot import module {module!r} (looked in {root} and sys.path)")
    origin = spec.origin
    if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
        return None
    source = Path(origin).read_bytes()
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as exc:
        raise ValueError(f"cannot import module {module!r}: {exc.msg} ({origin}, line {exc.lineno})") from None
    if function not in _top_level_names(tree):
        raise ValueError(f"module {module!r} ({origin}) has no function {function!r}")
    return Path(origin)


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


_located: dict[tuple[str, Path], tuple[tuple, Path]] = {}


def locate(plot: str, root: Path) -> Path | None:
    """find_plot_file, remembered while the module's source is unchanged (many charts share one)."""
    key = (plot, root)
    cached = _located.get(key)
    if cached is not None:
        stamp = _stamp(cached[1])
        if stamp is not None and stamp == cached[0]:
            return cached[1]
    found = find_plot_file(plot, root)
    if found is not None:
        _located[key] = (_stamp(found), found)
    return found


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


# --- render time, in a worker: import the module, return the function ---------------------

_modules: dict[str, tuple[str, types.ModuleType]] = {}


def load_plot_function(job: RenderJob) -> Callable[..., None]:
    """Import the plot function; a board module is re-executed whenever its source changes."""
    module_name, _, func_name = job.plot.partition(":")
    if job.root not in sys.path:
        sys.path.insert(0, job.root)
    if job.plot_file is None:
        module = importlib.import_module(module_name)
    else:
        # Compiled from source by content hash, not through cached bytecode: an edit within
        # the same second as the last one must still be picked up.
        source = Path(job.plot_file).read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        cached = _modules.get(job.plot_file)
        if cached is not None and cached[0] == digest:
            module = cached[1]
        else:
            module = types.ModuleType(module_name)
            module.__file__ = job.plot_file
            sys.modules[module_name] = module
            exec(compile(source, job.plot_file, "exec"), module.__dict__)
            _modules[job.plot_file] = (digest, module)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no function {func_name!r}") from None
