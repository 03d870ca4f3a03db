"""The `plot = "module:function"` contract, both halves of it.

At load time the daemon only *locates* the module and checks, without importing it, that it
defines the function: importing runs user code and matplotlib, which the daemon never does.
In a render worker the module is *loaded* and the function returned.

This module stays light (no matplotlib): the loader and every worker import it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from renderer.readfile import SOURCE_LIMIT, kind, read_file
from renderer.render import modules as boardmods

if TYPE_CHECKING:
    from renderer.render.jobs import RenderJob

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
        special = _special_file(module, root)
        if special:
            raise ValueError(f"cannot import module {module!r}: {special}")
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
    if spec is None:
        raise ValueError(f"cannot import module {module!r} (looked in {root} and sys.path)")
    origin = spec.origin
    if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
        return None
    try:
        source = read_file(origin, SOURCE_LIMIT)
    except OSError as exc:
        raise ValueError(f"cannot read module {module!r}: {origin}: {exc.strerror or exc}") from None
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as exc:
        raise ValueError(f"cannot import module {module!r}: {exc.msg} ({origin}, line {exc.lineno})") from None
    if not _may_define(tree, function):
        raise ValueError(f"module {module!r} ({origin}) has no function {function!r}")
    return Path(origin)


def _special_file(module: str, root: Path) -> str | None:
    """'FILE is not a regular file but a FIFO' when the module's source next to the board file
    is there but is no regular file (Python's finder passes over it as if it were missing)."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            continue
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is not a regular file but {kind(st.st_mode)}"
    return None


# Names whose use means a module may bind names no parse can see.
_DYNAMIC = {"globals", "exec", "eval", "setattr", "__dict__", "__getattr__", "vars", "locals", "modules"}


def _may_define(tree: ast.Module, name: str) -> bool:
    """False only when the module surely binds no such name: it is bound by none of the
    module-level statements, those under if/try/with/for/while included, and the module does
    nothing that could bind names unseen (`from x import *`, globals(), exec, a module
    __getattr__, sys.modules tricks). When unsure, True: Python decides in the worker."""
    found = False

    def visit(body: list[ast.stmt]) -> bool:
        nonlocal found
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name == "__getattr__":
                    return True  # a module __getattr__ answers any name
                found |= node.name == name
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name == "*":
                        return True
                    found |= (alias.asname or alias.name).split(".")[0] == name
            else:
                for child in ast.walk(node):
                    if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                        found |= child.id == name
                    elif isinstance(child, (ast.Name, ast.Attribute)):
                        if (child.id if isinstance(child, ast.Name) else child.attr) in _DYNAMIC:
                            return True
                    elif isinstance(child, ast.Global):
                        found |= name in child.names
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(node, field, None)
                if isinstance(inner, list) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                     ast.ClassDef)):
                    for item in inner:
                        if isinstance(item, (ast.ExceptHandler, ast.match_case)):
                            if visit(item.body):
                                return True
                        elif isinstance(item, ast.stmt) and visit([item]):
                            return True
        return False

    return visit(tree.body) or found


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


def load_plot_function(job: RenderJob) -> Callable[..., None]:
    """Import the plot function the ordinary way (renderer.render.modules: packages work, a board
    module whose source changed, or whose helpers' did, is executed afresh)."""
    module_name, _, func_name = job.plot.partition(":")
    if not boardmods.tracking_now():
        with boardmods.tracking(job.root):
            return load_plot_function(job)
    try:
        module = boardmods.import_plot_module(module_name)
    except ModuleNotFoundError as exc:  # the plot module, or a board module it imports
        special = _special_file(exc.name, Path(job.root)) if exc.name else None
        if special:
            raise ModuleNotFoundError(f"cannot import module {exc.name!r}: {special}", name=exc.name) from None
        raise
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no function {func_name!r}") from None
