"""What importing plotboard's modules does: nothing to the process that imports them."""

from __future__ import annotations

import pkgutil
from pathlib import Path
import subprocess
import sys

import renderer
from conftest import REPO, cli_env


def all_modules() -> list[str]:
    """Every module of the renderer package (the demo board's files are data, not modules)."""
    names = [m.name for m in pkgutil.walk_packages(renderer.__path__, "renderer.")]
    return sorted(n for n in names if not n.startswith("renderer.demo_board") and n != "renderer.__main__")


def test_no_module_decides_the_exit_status_of_a_process_that_imports_it():
    modules = all_modules()
    assert "renderer.executors.forkserver" in modules and len(modules) > 40
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nsys.exit(3)\n"
    result = subprocess.run([sys.executable, "-c", code, *modules], env=cli_env(), cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr


# The rooms, lowest first: a module imports only from its own room and lower ones. The basics
# (errors, text, jsonfile, readfile, helpers, threads) sit below every room; the entry points (cli, build,
# demo, scaffold, __main__) above them all.
BASICS = {"renderer", "renderer.errors", "renderer.text", "renderer.jsonfile", "renderer.readfile", "renderer.helpers",
          "renderer.threads"}
ROOMS = ["render", "board", "store", "executors", "pages", "alerts", "metrics", "publish", "serve", "daemon"]


def level(module: str) -> int:
    if module in BASICS:
        return 0
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ROOMS:
        return 1 + ROOMS.index(parts[1])
    return 1 + len(ROOMS)  # an entry point


def imports(module: str) -> set[str]:
    """The plotboard modules a module imports (at any depth of its code, TYPE_CHECKING aside)."""
    import ast
    import importlib.util

    path = importlib.util.find_spec(module).origin
    tree = ast.parse(Path(path).read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("renderer"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("renderer"):
            for a in node.names:  # `from renderer.store import records` imports renderer.store.records
                sub = f"{node.module}.{a.name}"
                found.add(sub if importlib.util.find_spec(node.module).submodule_search_locations
                          and importlib.util.find_spec(sub) else node.module)
    return found - {module}


def test_lower_rooms_never_import_higher_ones():
    wrong = []
    for module in all_modules():
        for other in imports(module):
            if level(other) > level(module):
                wrong.append(f"{module} imports {other}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {m: imports(m) for m in all_modules()}
    seen: dict[str, int] = {}  # 1: on the path, 2: done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for n in sorted(graph.get(m, ())):
            if seen.get(n) == 1:
                cycles.append(" -> ".join(path[path.index(n):] + [m, n]) if n in path else f"{m} -> {n}")
            elif n not in seen:
                visit(n, path + [m])
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [])
    assert not cycles, "\n".join(cycles)


def test_no_module_over_400_lines_and_no_class_over_300():
    """The house stays walkable: a module that grows past 400 lines holds two concerns."""
    import ast

    big = []
    for module in all_modules():
        import importlib.util

        source = Path(importlib.util.find_spec(module).origin).read_text()
        if source.count("\n") > 400:
            big.append(f"{module}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 300:
                big.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not big, "\n".join(big)
