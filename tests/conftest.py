"""Shared fixtures: a real CLI in a subprocess, boards in tmp_path (fresh or built once and
restored), waiting with deadlines, and a guard that fails any test leaving threads or child
processes behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli(*args: str, cwd: Path | None = None, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m renderer ARGS` to completion; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "renderer", *map(str, args)],
        cwd=cwd, env=cli_env(**env), capture_output=True, text=True, timeout=timeout,
    )


def start_cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen:
    """Start `python -m renderer ARGS` in the background (stderr to a pipe, text mode)."""
    return subprocess.Popen(
        [sys.executable, "-m", "renderer", *map(str, args)],
        cwd=cwd, env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition", interval: float = 0.02):
    """Poll `condition` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


PLOTS = '''
import time

def line(fig, inputs, **params):
    ax = fig.add_subplot()
    for path in inputs:
        values = [float(v) for v in open(path).read().split()]
        ax.plot(values)
    ax.set_title(params.get("label", ""))

def boom(fig, inputs, **params):
    raise ValueError("plot exploded")
'''


class Board:
    """A board in a folder: board file, plots module, data files; helpers to change them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "plotboard.toml"
        self.output = root / "public"

    def write(self, toml: str, plots: str = PLOTS) -> "Board":
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "plots.py").write_text(textwrap.dedent(plots))
        self.file.write_text(textwrap.dedent(toml))
        return self

    def data(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def cli(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return cli(*args, "-c", str(self.file), **kw) if args and args[0] in ("build", "status", "run") else cli(*args, **kw)

    def status(self) -> dict:
        return json.loads((self.output / "status.json").read_text())

    def chart(self, name: str) -> dict:
        return next(c for c in self.status()["charts"] if c["name"] == name)


TWO_CHARTS = """
[board]
title = "Test board"
workers = 2
render_timeout = "20s"

[defaults]
size = [4, 2]
dpi = 50
hidpi = false

[[charts]]
name = "a"
title = "Chart A"
plot = "plots:line"
inputs = ["data/a.txt"]

[[charts]]
name = "b"
title = "Chart B"
plot = "plots:line"
inputs = ["data/b.txt"]
"""


TWO_CHARTS_DATA = {"data/a.txt": "1 2 3 2 1\n", "data/b.txt": "3 1 4 1 5\n"}


@pytest.fixture
def board(tmp_path: Path) -> Board:
    """A two-chart board (a reads data/a.txt, b reads data/b.txt), not yet built."""
    b = Board(tmp_path / "board").write(TWO_CHARTS)
    for name, text in TWO_CHARTS_DATA.items():
        b.data(name, text)
    return b


class Snapshot:
    """A board built once and copied aside. restore() puts the built folder back where it was
    built (same paths, same mtimes), so its bookkeeping still matches its inputs: a test gets
    a built board without paying for a cold build (a matplotlib import in the workers)."""

    def __init__(self, board: Board, copy: Path, result: subprocess.CompletedProcess) -> None:
        shutil.copytree(board.root, copy, symlinks=True)
        self.board, self.copy, self.result = board, copy, result

    def restore(self) -> Board:
        shutil.rmtree(self.board.root)
        shutil.copytree(self.copy, self.board.root, symlinks=True)
        return self.board


def build_once(top: Path, toml: str, files: dict[str, str], plots: str = PLOTS) -> Snapshot:
    """Write a board (board file, plots.py, `files` relative to it) under top, build it with
    the real CLI, and snapshot the result."""
    b = Board(top / "board").write(toml, plots)
    for name, text in files.items():
        b.data(name, text)
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    return Snapshot(b, top / "snapshot", result)


@pytest.fixture(scope="session")
def built_snapshot(tmp_path_factory) -> Snapshot:
    """The `board` fixture's two-chart board, built once per session."""
    return build_once(tmp_path_factory.mktemp("built"), TWO_CHARTS, TWO_CHARTS_DATA)


@pytest.fixture
def built(built_snapshot: Snapshot) -> Board:
    """The two-chart board just as one `build` left it (every chart ok, rendered once)."""
    return built_snapshot.restore()


# -- images and output folders -------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def temp_files(folder: Path) -> list[str]:
    """Hidden temporary files (`.*.tmp`) anywhere below folder, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp"))


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail a test that leaves threads or child processes running (after a grace period)."""
    threads_before = set(threading.enumerate())
    yield
    me = psutil.Process()

    def clean() -> bool:
        alive = [p for p in _children(me) if p.status() != psutil.STATUS_ZOMBIE]
        extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        return not alive and not extra

    deadline = time.monotonic() + 10
    while not clean():
        if time.monotonic() > deadline:
            kids = [f"{p.pid} {p.name()} {p.cmdline()[:4]}" for p in _children(me)]
            extra = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
            for p in _children(me):
                try:
                    p.kill()
                except psutil.Error:
                    pass
            pytest.fail(f"leaked child processes {kids} / threads {extra}")
        time.sleep(0.05)


def _children(me: psutil.Process) -> list[psutil.Process]:
    """Child processes, less multiprocessing's own long-lived helpers of this pytest process
    (the forkserver and resource tracker live as long as the process that started them)."""
    kids = []
    for p in me.children(recursive=True):
        try:
            if p.ppid() == me.pid and any("multiprocessing" in part for part in p.cmdline()):
                continue
            if p.is_running():
                kids.append(p)
        except psutil.Error:
            pass
    return kids
