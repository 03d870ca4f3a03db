"""Shared fixtures: a real CLI in a subprocess, boards in tmp_path (fresh or built once and
restored), the real daemon, waiting with deadlines, checks on images and processes, and a
guard that fails any test leaving threads or child processes behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable

import psutil
import pytest
from browser import free_port  # noqa: F401 - the tests import it from here

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


# -- images, output folders, ports, processes ---------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(data: bytes) -> str | None:
    """None for a whole PNG (every chunk's CRC right, IEND last), else what is wrong."""
    if not data.startswith(PNG_SIGNATURE):
        return f"no PNG signature ({len(data)} bytes)"
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return f"chunk {kind!r} cut off at {len(data)} bytes"
        if zlib.crc32(data[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            return f"bad CRC in chunk {kind!r}"
        if kind == b"IEND":
            return None if end == len(data) else "bytes after IEND"
        pos = end
    return f"no IEND ({len(data)} bytes)"


def complete_png(path: Path) -> bytes | None:
    """The file's bytes when it is a whole PNG, else None (missing, cut short or corrupt)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return None if png_problem(data) else data


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


def fast_board(root: Path, *charts: str, timeout: str = "20s", plots: str = PLOTS) -> Board:
    """A board of small, quick charts (FAST's settings) made of chart() tables."""
    return Board(root).write(FAST.format(timeout=timeout) + "".join(charts), plots=plots)


def write_data(path: Path, values: list[float]) -> None:
    path.write_text(" ".join(map(str, values)) + "\n")


class Daemon:
    """`python -m renderer run` on a board, its stderr in a file so it can never block."""

    def __init__(self, board: Board, *args: str) -> None:
        self.board = board
        self.log_path = board.root / f"run-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "renderer", "run", "-c", str(board.file), *args],
            cwd=board.root, env=cli_env(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.wait_log("run: ", what="the daemon to start")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def _running(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"the daemon exited ({self.proc.returncode}):\n{self.log}")

    def wait_log(self, text: str, timeout: float = 30, what: str | None = None, count: int = 1) -> str:
        def seen():
            self._running()
            return self.log.count(text) >= count
        wait_for(seen, timeout, what or repr(text))
        return self.log

    def count(self, text: str) -> int:
        return self.log.count(text)

    def state(self, name: str) -> dict:
        try:
            return self.board.chart(name)
        except (FileNotFoundError, ValueError, StopIteration):
            return {}

    def wait_state(self, name: str, timeout: float = 30, **expected: object) -> dict:
        def match():
            st = self.state(name)
            return st if st and all(st.get(k) == v for k, v in expected.items()) else None
        return wait_for(match, timeout, f"{name} to be {expected} (log:\n{self.log})")

    def image(self, name: str) -> bytes | None:
        """NAME.png's bytes when it is a whole PNG, else None."""
        return complete_png(self.board.output / f"{name}.png")

    def new_image(self, name: str, before: bytes | None, timeout: float = 5, what: str | None = None) -> bytes:
        """Wait until NAME.png is a whole PNG other than `before`; returns its bytes."""
        def changed():
            self._running()
            data = self.image(name)
            return data if data and data != before else None
        return wait_for(changed, timeout, what or f"a new {name}.png")

    def tree(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def daemons():
    """Start daemons with daemons(board, *args); any still running at the end are killed."""
    started: list[Daemon] = []

    def start(board: Board, *args: str) -> Daemon:
        d = Daemon(board, *args)
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
