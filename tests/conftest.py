"""Shared fixtures: a real CLI in a subprocess, boards in tmp_path (fresh or built once and
restored), the real daemon, waiting with deadlines, checks on images and processes, and a
guard that fails any test leaving threads or child processes behind."""

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
from typing import Iterable

import psutil
import pytest
from browser import free_port  # noqa: F401 - the tests import it from here
from daemon_helpers import (  # noqa: F401 - the tests import them from here
    PNG_SIGNATURE, Daemon, cli_env, complete_png, png_problem, wait_for,
)

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


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
        path = b.data(name, text)
        # Written a minute ago, as data a build finds usually is: its records hold no racy input
        # (renderer.store.fingerprints.same), which the first later build would settle and save.
        old = time.time_ns() - 60 * 1_000_000_000
        os.utime(path, ns=(old, old))
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


# -- images, output folders, ports, processes ---------------------------------------------------

def temp_files(folder: Path) -> list[str]:
    """Hidden temporary files (`.*.tmp`) anywhere below folder, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp"))


def living(procs: Iterable[psutil.Process]) -> list[str]:
    """'PID command' of each of these processes still running (a zombie counts as gone)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline()[:4])}")
        except psutil.Error:
            pass
    return out


# -- the daemon ---------------------------------------------------------------------------------

FAST = """
[board]
title = "Daemon board"
workers = 2
render_timeout = "{timeout}"

[defaults]
size = [2, 1]
dpi = 40
hidpi = false
"""


def chart(name: str, plot: str = "plots:line", inputs: str = "", extra: str = "") -> str:
    """A [[charts]] table for a board file; `extra` is more TOML lines for it."""
    text = f'\n[[charts]]\nname = "{name}"\nplot = "{plot}"\n'
    if inputs:
        text += f'inputs = ["{inputs}"]\n'
    return text + extra + "\n"


def fast_board(root: Path, *charts: str, timeout: str = "20s", plots: str = PLOTS, refresh: str = "") -> Board:
    """A board of small, quick charts (FAST's settings; the page's `refresh` when given) made of
    chart() tables."""
    board = FAST.format(timeout=timeout) + "".join(charts)
    if refresh:
        board = board.replace("[board]\n", f'[board]\nrefresh = "{refresh}"\n', 1)
    return Board(root).write(board, plots=plots)


def write_data(path: Path, values: list[float]) -> None:
    path.write_text(" ".join(map(str, values)) + "\n")


@pytest.fixture
def daemons():
    """Start daemons with daemons(board, *args); any still running at the end are killed."""
    started: list[Daemon] = []

    def start(board: Board, *args: str, **kw) -> Daemon:
        d = Daemon(board, *args, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail a test that leaves threads or child processes running (after a grace period)."""
    threads_before = set(threading.enumerate())
    yield
    me = psutil.Process()

    def clean() -> bool:
        extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        return not living(_children(me)) and not extra

    try:
        wait_for(clean, 30, "the test's child processes and threads to end", interval=0.05)
    except AssertionError:
        kids = living(_children(me))
        extra = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        for p in _children(me):
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail(f"leaked child processes {kids} / threads {extra}")


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


def remove_tree(path: Path) -> None:
    """Delete a folder that a running daemon may be writing into, as `rm -rf` would: moved
    aside in one step (so it is gone at once), then deleted (rmtree in place could meet a file
    the daemon creates meanwhile and fail with ENOTEMPTY)."""
    aside = path.with_name(f".{path.name}-removed-{time.monotonic_ns()}")
    os.rename(path, aside)
    shutil.rmtree(aside)
