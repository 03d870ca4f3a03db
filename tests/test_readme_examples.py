"""The README's examples run as written: every ```python block is run, and its plot functions
draw real charts through `plotboard build`; every ```toml block that is a whole board (it has
charts) is built with those functions and data files made for it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import REPO, cli

README = (REPO / "README.md").read_text()


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block of `language` in the README."""
    found = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```$", README, re.M | re.S):
        found.append((README.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


PYTHON = blocks("python")
BOARDS = [(line, code) for line, code in blocks("toml") if "[[charts]]" in code and "plot =" in code]


def examples_module() -> str:
    """Every python block, one after the other: the plot functions the board examples name."""
    return "\n\n".join(code for _, code in PYTHON)


def data_csv(hours: int = 48) -> str:
    """A CSV of the shape the examples read: epoch `time`, `used`, `value`."""
    end = int(time.time())
    rows = ["time,used,value"]
    for i in range(hours):
        rows.append(f"{end - (hours - i) * 3600},{40 + i % 7},{i * 0.5}")
    return "\n".join(rows) + "\n"


def make_folder(root: Path, module: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "charts.py").write_text(module)
    (root / "data").mkdir()
    for name in ("cpu.csv", "disk-sda1.csv", "disk-sdb.csv"):
        (root / "data" / name).write_text(data_csv())
    (root / "my-templates").mkdir()


def test_the_readme_has_examples():
    assert PYTHON and BOARDS


@pytest.mark.parametrize("line, code", PYTHON, ids=[f"line{line}" for line, _ in PYTHON])
def test_python_example_runs_and_its_plot_functions_draw(tmp_path, line, code):
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # raises if the example cannot run as written
    functions = [name for name, value in namespace.items()
                 if callable(value) and getattr(value, "__module__", None) == "readme_example"
                 and value.__code__.co_varnames[:2] == ("fig", "inputs")]
    if not functions:
        return
    make_folder(tmp_path, code)
    charts = "".join(f'''
[[charts]]
name = "{name}"
plot = "charts:{name}"
inputs = ["data/cpu.csv"]
windows = ["1d", "7d"]
''' for name in functions)
    (tmp_path / "plotboard.toml").write_text('[board]\nworkers = 1\n' + charts)
    result = cli("build", "-c", tmp_path / "plotboard.toml")
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"
    for name in functions:
        assert (tmp_path / "public" / f"{name}.png").is_file()


@pytest.mark.parametrize("line, code", BOARDS, ids=[f"line{line}" for line, _ in BOARDS])
def test_board_example_builds(tmp_path, line, code):
    make_folder(tmp_path, examples_module())
    (tmp_path / "plotboard.toml").write_text(code)
    result = cli("build", "-c", tmp_path / "plotboard.toml")
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"
    assert (tmp_path / "public" / "index.html").is_file()
