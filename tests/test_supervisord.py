"""The repository's supervisord.conf under a real supervisord: a daemon killed with SIGKILL is
restarted, and a reader polling the images over HTTP and on disk never sees a broken file."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import psutil
from conftest import remove_tree, REPO, Board, cli_env, free_port, living, png_problem, wait_for

BOARD = """
[board]
title = "Supervised board"
workers = 2
render_timeout = "5s"

[defaults]
size = [6, 3]
dpi = 80
hidpi = true
every = "300ms"

[[charts]]
name = "noise"
plot = "plots:noise"

[[charts]]
name = "walk"
plot = "plots:walk"
"""

PLOTS = '''
import numpy as np

def noise(fig, inputs, **params):
    fig.add_subplot().plot(np.random.default_rng().normal(size=3000), linewidth=0.5)

def walk(fig, inputs, **params):
    fig.add_subplot().plot(np.random.default_rng().normal(size=3000).cumsum())
'''

IMAGES = ("noise.png", "noise@2x.png", "walk.png", "walk@2x.png")


class Reader(threading.Thread):
    """Reads every image over HTTP and from disk in a loop, recording anything not whole."""

    def __init__(self, port: int, folder: Path) -> None:
        super().__init__(name="image-reader")
        self.port, self.folder = port, folder
        self.stop = threading.Event()
        self.http_reads = self.disk_reads = 0
        self.problems: list[str] = []
        self.seen: dict[str, set[bytes]] = {name: set() for name in IMAGES}

    def run(self) -> None:
        while not self.stop.is_set():
            for name in IMAGES:
                self.check(f"disk {name}", self.read_disk, name)
                self.check(f"http {name}", self.read_http, name)

    def check(self, what: str, read, name: str) -> None:
        try:
            data = read(name)
        except (OSError, http.client.HTTPException) as exc:
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return
        problem = png_problem(data)
        if problem:
            self.problems.append(f"{what}: {problem}")
        else:
            self.seen[name].add(zlib.crc32(data).to_bytes(4, "big"))

    def read_disk(self, name: str) -> bytes:
        data = (self.folder / name).read_bytes()
        self.disk_reads += 1
        return data

    def read_http(self, name: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", f"/{name}")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}")
        if len(body) != int(resp.getheader("Content-Length", -1)):
            raise OSError(f"{len(body)} bytes, Content-Length {resp.getheader('Content-Length')}")
        self.http_reads += 1
        return body

    def variants(self) -> int:
        return min(len(v) for v in self.seen.values())


class Supervisor:
    """supervisord on a copy of the repository's supervisord.conf in tmp_path (so %(here)s,
    its pid file and control socket are there), the board and port set through the
    environment variables the file documents."""

    def __init__(self, tmp_path: Path, board: Board, port: int) -> None:
        self.home = tmp_path / "supervisor"
        self.home.mkdir()
        self.conf = self.home / "supervisord.conf"
        shutil.copyfile(REPO / "supervisord.conf", self.conf)
        shims = tmp_path / "bin"
        shims.mkdir()
        # The programs run `plotboard` and `python3` from PATH: both are this checkout's code
        # under this interpreter.
        for name, line in (("plotboard", f'exec "{sys.executable}" -m renderer "$@"'),
                           ("python3", f'exec "{sys.executable}" "$@"')):
            (shims / name).write_text(f"#!/bin/sh\n{line}\n")
            (shims / name).chmod(0o755)
        self.env = cli_env(
            PATH=f"{shims}{os.pathsep}{os.environ['PATH']}",
            PLOTBOARD_CONFIG=str(board.file), PLOTBOARD_OUTPUT=str(board.output), PLOTBOARD_PORT=str(port),
        )
        self.log_path = tmp_path / "supervisord.out"
        # Appending: supervisord and its programs (stdout_logfile=/dev/stdout) share this file.
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
                                         cwd=tmp_path, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ctl(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                                env=self.env, capture_output=True, text=True, timeout=30)
        return result.stdout.strip()

    def pid(self, program: str) -> int:
        out = self.ctl("pid", program)
        return int(out) if out.isdigit() else 0

    def running(self, program: str) -> int:
        """The program's pid once supervisord counts it as started (RUNNING), else 0."""
        return self.pid(program) if " RUNNING " in self.ctl("status", program) else 0

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def family(pid: int) -> dict[int, psutil.Process]:
    try:
        root = psutil.Process(pid)
        return {p.pid: p for p in [root, *root.children(recursive=True)]}
    except psutil.NoSuchProcess:
        return {}


def test_supervisord_restarts_a_killed_daemon_and_readers_never_see_a_broken_image(tmp_path):
    board = Board(tmp_path / "board").write(BOARD, plots=PLOTS)
    port = free_port()
    sv = Supervisor(tmp_path, board, port)
    reader = Reader(port, board.output)
    everyone: dict[int, psutil.Process] = {}
    try:
        first = wait_for(lambda: sv.running("plotboard"), timeout=90, what="the daemon RUNNING under supervisord")
        wait_for(lambda: all((board.output / name).exists() for name in IMAGES), timeout=90,
                 what="the first images")
        wait_for(lambda: sv.running("preview"), timeout=90, what="the preview server RUNNING")
        everyone.update(family(sv.proc.pid))
        reader.start()
        wait_for(lambda: reader.variants() >= 3, timeout=90, what="images changing under the reader")

        # Kill the daemon mid-work (its charts render every 300 ms); its workers go down with it.
        old_family = family(first)
        everyone.update(old_family)
        assert len(old_family) > 1, "the daemon has worker processes"
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (p := sv.pid("plotboard")) not in (0, first) and p, timeout=90,
                          what="supervisord to start a new daemon")
        wait_for(lambda: not living(old_family.values()), timeout=90, what="the killed daemon's workers to exit")
        before = reader.variants()
        wait_for(lambda: reader.variants() >= before + 3, timeout=90, what="the new daemon's images")
        # RUNNING only after startsecs (3 s): the new daemon may publish images before that.
        wait_for(lambda: sv.running("plotboard") == second, timeout=90, what="supervisord to count the new daemon RUNNING")
        everyone.update(family(sv.proc.pid))
    finally:
        reader.stop.set()
        if reader.is_alive():
            reader.join()
        code = sv.stop()
        try:
            wait_for(lambda: not living(everyone.values()), 60, "every process of the run to end", interval=0.05)
        except AssertionError:
            pass  # named below
        leftovers = living(everyone.values())
        for p in everyone.values():
            try:
                p.kill()
            except psutil.Error:
                pass
    log = sv.log()
    assert code == 0, log[-3000:]
    assert reader.problems == [], reader.problems[:10]
    assert reader.http_reads > 40 and reader.disk_reads > 40
    assert "exited: plotboard (terminated by SIGKILL" in log
    assert "stopped: plotboard (exit status 0)" in log, log[-3000:]
    assert leftovers == [], leftovers
    assert not (sv.home / ".supervisor.sock").exists() and not (sv.home / ".supervisord.pid").exists()
    assert list(board.output.glob(".*.tmp")) == []


def test_under_supervisord_a_second_run_is_refused_after_plotboard_dir_is_deleted(tmp_path):
    board = Board(tmp_path / "board").write(BOARD, plots=PLOTS)
    sv = Supervisor(tmp_path, board, free_port())
    try:
        first = wait_for(lambda: sv.running("plotboard"), timeout=90, what="the daemon RUNNING under supervisord")
        wait_for(lambda: all((board.output / name).exists() for name in IMAGES), timeout=90, what="the first images")
        remove_tree(board.root / ".plotboard")  # as git clean -fdX or a tmp cleaner would
        second = subprocess.run([sys.executable, "-m", "renderer", "run", "-c", str(board.file)],
                                env=cli_env(), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stderr
        assert f"the board is in use by plotboard run (pid {first})" in second.stderr
        # The first keeps its images current (they render every 300 ms) and stays the one.
        before = (board.output / "walk.png").stat().st_mtime_ns
        wait_for(lambda: (board.output / "walk.png").stat().st_mtime_ns != before, 60, "a newer walk.png")
        assert sv.pid("plotboard") == first
    finally:
        code = sv.stop()
    assert code == 0, sv.log()[-3000:]
