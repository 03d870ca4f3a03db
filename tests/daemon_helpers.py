"""What the tests and bench/run.py share to drive the real daemon: waiting for a condition with a
deadline, the environment of a CLI subprocess, whole-PNG checks and `plotboard run` in a
subprocess. Importable without pytest's conftest (bench/run.py puts tests/ on sys.path)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy and return that; AssertionError
    naming `what` once `timeout` seconds have passed. The only waiting the tests do: a
    deadline is how long to keep looking, never how fast something must happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of `python -m renderer` run from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


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


# `python -c` code: the CLI, with one method made to raise the first time it is called. For the
# faults the product has no known way to cause (a bug in one of its threads): argv[1] names the
# method as "module:Class.method", the rest are the CLI's arguments.
INJECT_FAULT = """
import functools, importlib, sys

module, _, qualname = sys.argv[1].partition(":")
owner_name, _, name = qualname.rpartition(".")
owner = getattr(importlib.import_module(module), owner_name)
original = getattr(owner, name)
fired = []

@functools.wraps(original)
def faulty(*args, **kwargs):
    if not fired:
        fired.append(True)
        raise RuntimeError(f"injected fault in {qualname}")
    return original(*args, **kwargs)

setattr(owner, name, faulty)
from renderer.cli import main
sys.exit(main(sys.argv[2:]))
"""


def with_fault(method: str, *args: str) -> list[str]:
    """The command line of `python -m renderer ARGS` in which `method` ("module:Class.method")
    raises RuntimeError("injected fault in Class.method") the first time it is called."""
    return [sys.executable, "-c", INJECT_FAULT, method, *map(str, args)]


class DaemonExited(AssertionError):
    """The daemon a test waits on is no longer running."""


class Daemon:
    """`python -m renderer run` on a board, its output in a log file (a pipe could fill up and
    block it). `board` is a tests' conftest.Board or the path of a board file (its output
    folder is then `public/` next to it)."""

    def __init__(self, board: Any, *args: str, env: dict[str, str] | None = None,
                 start_timeout: float = 60, preexec_fn: Callable[[], None] | None = None) -> None:
        self.board = board
        self.file = Path(getattr(board, "file", board))
        self.output = Path(getattr(board, "output", self.file.parent / "public"))
        self.log_path = self.file.parent / f"run-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "renderer", "run", "-c", str(self.file), *args],
            cwd=self.file.parent, env=env if env is not None else cli_env(),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
        )
        try:
            self.wait_log("run: ", timeout=start_timeout, what="the daemon to start")
        except BaseException:
            self.close()
            raise

    # -- what it says and what it wrote ---------------------------------------------------------

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        """True while it runs; DaemonExited (with its log) once it has exited."""
        if self.proc.poll() is not None:
            raise DaemonExited(f"the daemon exited ({self.proc.returncode}):\n{self.log[-5000:]}")
        return True

    def wait_log(self, text: str, timeout: float = 60, what: str | None = None, count: int = 1) -> str:
        """Wait until the log holds `text` `count` times. Prefer status.json (wait_state,
        charts()): log lines are worded for people and may change."""
        wait_for(lambda: self.alive() and self.log.count(text) >= count, timeout, what or repr(text))
        return self.log

    def count(self, text: str) -> int:
        return self.log.count(text)

    def charts(self) -> list[dict]:
        """status.json's charts as the daemon last wrote them ([] while it is unreadable)."""
        try:
            return json.loads((self.output / "status.json").read_text())["charts"]
        except (OSError, ValueError, KeyError):
            return []

    def state(self, name: str) -> dict:
        """The chart's entry in status.json ({} while unreadable or absent)."""
        return next((c for c in self.charts() if c.get("name") == name), {})

    def wait_state(self, name: str, timeout: float = 60, **expected: object) -> dict:
        """Wait until the chart's status.json entry has every `expected` key=value; returns it."""
        def match():
            self.alive()
            st = self.state(name)
            return st if st and all(st.get(k) == v for k, v in expected.items()) else None
        return wait_for(match, timeout, f"{name} to be {expected} (now {self.state(name)}; log:\n{self.log[-5000:]})")

    def image(self, name: str) -> bytes | None:
        """NAME.png's bytes when it is a whole PNG, else None."""
        return complete_png(self.output / f"{name}.png")

    def new_image(self, name: str, before: bytes | None, timeout: float = 60, what: str | None = None) -> bytes:
        """Wait until NAME.png is a whole PNG other than `before`; returns its bytes."""
        def changed():
            self.alive()
            data = self.image(name)
            return data if data and data != before else None
        return wait_for(changed, timeout, what or f"a new {name}.png")

    # -- its processes --------------------------------------------------------------------------

    def tree(self) -> list:
        """The processes below the daemon (psutil.Process), [] once it is gone."""
        import psutil

        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send `sig` (SIGTERM) and return the exit status; killed if it has not exited within
        `timeout` s (subprocess.TimeoutExpired is raised then)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        """Kill it if it still runs; close the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
