"""What importing plotboard's modules does: nothing to the process that imports them."""

from __future__ import annotations

import pkgutil
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
