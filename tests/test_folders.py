"""Bad ports and unusable folders give one line and a non-zero exit, never a traceback; a
read-only board folder works with `[board] state` and `output` pointing elsewhere."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Board, chart, cli, cli_env, fast_board, wait_for, write_data
from test_demo import served, start_demo, stop_demo


def one_line(result: subprocess.CompletedProcess, code: int, *parts: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if all(p in line for p in parts)]
    assert lines, f"no line naming {parts}:\n{result.stderr}"
    return lines[0]


@pytest.mark.parametrize("args", [["run", "--serve", "70000"], ["run", "--serve", "-1"], ["run", "--serve", "http"],
                                  ["demo", "--port", "70000"], ["demo", "--port", "-1"]])
def test_a_port_out_of_range_is_refused_before_anything_starts(board, args):
    result = board.cli(*args)
    one_line(result, 2, "expected a port from 0 to 65535")
    assert not board.output.exists() and not (board.root / ".plotboard").exists()


def test_demo_on_port_0_prints_the_port_it_serves_on(tmp_path):
    proc, out = start_demo(tmp_path, "--port", "0", "--dir", str(tmp_path / "demo"))
    seen: dict = {}
    try:
        found = wait_for(lambda: re.search(r"http://127\.0\.0\.1:(\d+)/", out.read_text()), timeout=20,
                         what="the demo's banner")
        port = int(found.group(1))
        assert port != 0, out.read_text()
        wait_for(lambda: served(port, "/status.json"), timeout=45, what="the server to answer on the printed port")
    finally:
        code = stop_demo(proc, seen)
    assert code == 0 and "Traceback" not in out.read_text(), out.read_text()


def test_demo_on_a_port_in_use_says_so_before_writing(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = cli("demo", "--port", str(port), "--dir", str(tmp_path / "demo"))
    one_line(result, 1, f"cannot serve on 127.0.0.1:{port}", f"--port {port + 1}")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("blocker, named", [(".plotboard", ".plotboard"), ("public", "public"),
                                            ("public/static", "public/static")])
@pytest.mark.parametrize("command", ["build", "run"])
def test_a_file_where_a_folder_must_be_is_named_and_nothing_is_written(board, blocker, named, command):
    (board.root / blocker).parent.mkdir(parents=True, exist_ok=True)
    (board.root / blocker).write_text("mine\n")
    before = sorted(str(p.relative_to(board.root)) for p in board.root.rglob("*"))
    result = board.cli(command)
    one_line(result, 1, str(board.file), str(board.root / named), "is not a folder")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert (board.root / blocker).read_text() == "mine\n"
    assert sorted(str(p.relative_to(board.root)) for p in board.root.rglob("*")) == before


PR_SET_SECUREBITS, SECBIT_NOROOT = 28, 1 << 0  # <linux/prctl.h>, <linux/securebits.h>
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4


def without_root_powers():
    """preexec_fn for a child of root: the program it runs keeps uid 0 (it owns the same files
    and reaches the same folders) but gets no capabilities, so file permissions bind it as
    they bind any owner (no CAP_DAC_OVERRIDE). SECBIT_NOROOT: an execve() by uid 0 grants no
    capabilities; the ambient set, which an execve() keeps, is emptied. Needs CAP_SETPCAP,
    which root has; without it the child fails to start and the test fails."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork

    def apply() -> None:
        for args in ((PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), (PR_SET_SECUREBITS, SECBIT_NOROOT)):
            if libc.prctl(*args, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), f"prctl{args}")
    return apply


def read_only(root: Path, args: list[str]) -> subprocess.CompletedProcess:
    """`python -m renderer ARGS` with the folder `root` read-only to it (mode 0555); run as
    root, the child has no capabilities, so the mode binds it too."""
    command = [sys.executable, "-m", "renderer", *args]
    root.chmod(0o555)
    try:
        return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=120,
                              preexec_fn=without_root_powers() if os.geteuid() == 0 else None)
    finally:
        root.chmod(0o755)


def test_a_read_only_board_folder_is_named_with_the_way_out(board):
    result = read_only(board.root, ["build", "-c", str(board.file)])
    line = one_line(result, 1, str(board.root / ".plotboard"), "[board] state")
    assert "Read-only file system" in line or "Permission denied" in line or "not writable" in line
    assert not (board.root / ".plotboard").exists() and not board.output.exists()


def test_a_read_only_board_folder_works_with_state_and_output_elsewhere(board, tmp_path):
    writable = tmp_path / "var"
    board.file.write_text(board.file.read_text().replace(
        "[board]\n", f'[board]\nstate = "{writable / "state"}"\noutput = "{writable / "www"}"\n'))
    result = read_only(board.root, ["build", "-c", str(board.file)])
    assert result.returncode == 0, result.stderr
    assert (writable / "state" / "state.json").is_file() and (writable / "www" / "a.png").is_file()
    assert not (board.root / ".plotboard").exists()
    status = cli("status", "-c", board.file)
    assert status.returncode == 0, status.stdout


def test_state_may_not_share_the_output_folder(board):
    board.file.write_text(board.file.read_text().replace("[board]\n", '[board]\nstate = "public/.state"\n'))
    one_line(board.cli("build"), 2, str(board.file), "board.state", "output folder")
    assert not board.output.exists()


FOLDER_KEYS = ["output", "state", "templates"]


def bad_folder(board: Board, key: str, problem: str) -> str:
    """A `[board] KEY` line naming a folder that cannot be: a loop of symbolic links, or a
    name of 300 characters (the file system's limit is 255 bytes)."""
    if problem == "loop":
        (board.root / "loop").symlink_to("loop")
        return f'{key} = "loop"'
    return f'{key} = "{"x" * 300}"'


@pytest.mark.parametrize("problem", ["loop", "long"])
@pytest.mark.parametrize("key", FOLDER_KEYS)
@pytest.mark.parametrize("command", ["build", "run"])
def test_a_folder_setting_that_cannot_be_a_folder_is_named_at_load(board, key, problem, command):
    line = bad_folder(board, key, problem)
    board.file.write_text(board.file.read_text().replace("[board]\n", f"[board]\n{line}\n"))
    result = board.cli(command, timeout=60)
    one_line(result, 2, str(board.file), f"board.{key}", "loop of symbolic links" if problem == "loop" else "more than the 255")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not board.output.exists() and not (board.root / ".plotboard").exists()


@pytest.mark.parametrize("problem", ["loop", "long"])
@pytest.mark.parametrize("key", FOLDER_KEYS)
def test_a_reload_with_such_a_folder_setting_keeps_the_board(tmp_path, daemons, key, problem):
    board = fast_board(tmp_path / "b", chart("a", inputs="a.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    d = daemons(board)
    d.wait_state("a", state="ok")
    line = bad_folder(board, key, problem)
    board.file.write_text(board.file.read_text().replace("[board]\n", f"[board]\n{line}\n"))
    d.send(signal.SIGHUP)
    log = d.wait_log("reload failed", what="the reload to fail")
    assert f"board.{key}" in log[log.index("reload failed"):], log
    before = d.image("a")
    write_data(board.root / "a.txt", [3, 1, 2])
    d.new_image("a", before, what="the daemon to keep rendering the old board")
    assert d.stop() == 0
    assert "Traceback" not in d.log, d.log
