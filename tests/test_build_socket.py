"""The build socket (renderer.daemon.control), with real sockets and real processes: another user
who binds its name first, floods it or a same-user client that trickles its request cannot make a
build lie or wait; a windowed chart is rendered the same through the daemon as without it, and a
slow build is said to be still rendering, not refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from conftest import REPO, Board, chart, cli_env, fast_board, start_cli, wait_for
from renderer.daemon.client import StillRendering, ask_daemon
from renderer.daemon.control import address
from test_ownership import held_board

OTHER_UID = 65534

IMPOSTOR = """
import os, socket, sys
name = bytes.fromhex(sys.argv[1]).decode()
os.setgroups([])
os.setgid(int(sys.argv[2]))
os.setuid(int(sys.argv[2]))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(name)
s.listen(16)
print("bound", flush=True)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b'{"rendered": ["a"], "failed": [], "up_to_date": [], "pid": 1}\\n')
    c.close()
"""

FLOOD = """
import os, socket, sys
name = bytes.fromhex(sys.argv[1]).decode()
os.setgroups([])
os.setgid(int(sys.argv[2]))
os.setuid(int(sys.argv[2]))
held = []
print("flooding", flush=True)
while True:
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        c.connect(name)
        held.append(c)
    except OSError:
        c.close()
    if len(held) > 500:
        held.pop(0).close()
"""


def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a process as another user")


def as_other_user(script: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), name.encode().hex(), str(OTHER_UID)],
                            cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not proc.stdout.readline():
        proc.kill()
        raise AssertionError(f"the other user's process did not start: {proc.communicate()[1]}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.communicate()


def small_board(root: Path) -> Board:
    board = fast_board(root, chart("a", inputs="data/a.txt"))
    board.data("data/a.txt", "1 2 3\n")
    return board


def test_a_build_does_not_believe_another_users_process_on_the_socket(tmp_path, daemons):
    root_only()
    board = small_board(tmp_path / "b")
    impostor = as_other_user(IMPOSTOR, address(board.file.resolve()))
    try:
        d = daemons(board)
        d.wait_log("cannot take builds' requests on the build socket (another process holds its name)")
        result = board.cli("build", timeout=120)
        assert result.returncode == 1, result.stderr
        assert "done by" not in result.stderr and "Traceback" not in result.stderr
        assert f"uid {OTHER_UID}" in result.stderr and "not trusting it" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    finally:
        stop(impostor)


def socket_problems(board: Board) -> list:
    try:
        return json.loads((board.output / "status.json").read_text()).get("problems", [])
    except (OSError, ValueError):
        return []


def test_a_daemon_that_cannot_own_its_socket_says_so_in_status_until_it_gets_it(tmp_path, daemons):
    root_only()
    board = small_board(tmp_path / "b")
    impostor = as_other_user(IMPOSTOR, address(board.file.resolve()))
    try:
        d = daemons(board)
        d.wait_state("a", state="ok")
        wait_for(lambda: socket_problems(board), 60, "status.json to name the socket's problem")
        [problem] = socket_problems(board)
        assert problem["what"] == "socket" and "another process holds its name" in problem["message"]
        result = board.cli("status")
        assert result.returncode == 1, result.stdout
        assert len(result.stdout.strip().splitlines()) == 1 and "socket: cannot take builds" in result.stdout
        shown = json.loads(board.cli("status", "--json").stdout)
        assert shown["problems"] == [problem]
        page = (board.output / "index.html").read_text()
        assert '<div id="problems" class="banner problems" role="alert">' in page
        assert "another process holds its name" in page
        index = json.loads((board.output / "status" / "index.json").read_text())
        assert index["board"]["problems"] == [problem]
    finally:
        stop(impostor)
    wait_for(lambda: not socket_problems(board), 60, "the daemon to take the socket back")
    assert board.cli("status").returncode == 0
    assert '<div id="problems" class="banner problems" role="alert" hidden>' in (board.output / "index.html").read_text()
    result = board.cli("build", timeout=120)
    assert result.returncode == 0 and "done by plotboard run" in result.stderr, result.stderr


def test_a_board_problem_is_shown_escaped_and_named_by_status_in_one_line(tmp_path):
    from renderer.board.config import load_board
    from renderer.pages.model import Pages
    from renderer.pages.write import write_pages
    from renderer.store.records import load_state

    board = small_board(tmp_path / "b")
    assert board.cli("build").returncode == 0
    loaded = load_board(board.file)
    pages = Pages()
    pages.problems = [{"what": "socket", "message": "<script>x()</script>\nsecond line"}]
    write_pages(loaded, load_state(loaded), pages=pages)
    page = (board.output / "index.html").read_text()
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "<script>x()" not in page
    result = board.cli("status")
    assert result.returncode == 1 and result.stdout.count("\n") == 1, result.stdout
    assert result.stdout.startswith("PLOTBOARD WARNING - socket: <script>x()</script> second line; 1 chart ok")


def connect(board: Board) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(address(board.file.resolve()))
    return sock


def test_a_slow_client_and_a_flood_from_another_user_do_not_stop_a_build(tmp_path, daemons):
    root_only()
    board = small_board(tmp_path / "b")
    d = daemons(board)
    d.wait_state("a", state="ok")
    slow, done = connect(board), threading.Event()

    def trickle() -> None:  # one byte a second: never a whole request
        try:
            while not done.wait(1.0):
                slow.send(b" ")
        except OSError:
            pass  # dropped by the daemon: what should happen

    trickler = threading.Thread(target=trickle)
    trickler.start()
    flood = as_other_user(FLOOD, address(board.file.resolve()))
    try:
        for _ in range(2):
            result = board.cli("build", timeout=120)
            assert result.returncode == 0, result.stderr
            assert "done by plotboard run" in result.stderr
        # The trickling client was dropped: its whole request had READ_TIMEOUT, not each byte.
        wait_for(lambda: not trickler.is_alive(), 60, "the daemon to drop the slow client")
    finally:
        done.set()
        stop(flood)
        trickler.join()
        slow.close()
    assert "Traceback" not in d.log


def test_deeply_nested_json_on_the_socket_gets_one_line(tmp_path, daemons):
    board = small_board(tmp_path / "b")
    d = daemons(board)
    with connect(board) as sock:
        sock.sendall(b"[" * 60000 + b"\n")
        answer = json.loads(sock.makefile("rb").readline())
    assert answer["error"].startswith("bad request")
    d.wait_log("control: a bad request (nested too deep)")
    assert board.cli("build", timeout=120).returncode == 0
    assert "Traceback" not in d.log


WINDOWED = 'windows = ["1h", "1d"]'


def test_only_a_windowed_chart_renders_every_window_through_the_daemon_too(tmp_path, daemons):
    board = fast_board(tmp_path / "b", chart("disk", inputs="data/a.txt", extra=WINDOWED), chart("other"))
    board.data("data/a.txt", "1 2 3\n")
    alone = board.cli("build", "--force", "--only", "disk", timeout=120)
    assert alone.returncode == 0, alone.stderr
    assert "build: 2 rendered" in alone.stderr, alone.stderr

    d = daemons(board)
    d.wait_state("disk", state="ok")
    through = board.cli("build", "--force", "--only", "disk", timeout=120)
    assert through.returncode == 0, through.stderr
    assert "build: 2 rendered, 0 failed, 0 up to date (done by plotboard run" in through.stderr, through.stderr


def test_a_daemon_that_took_the_request_and_goes_on_rendering_is_said_to(tmp_path):
    board_path = tmp_path / "plotboard.toml"
    board_path.write_text("")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(address(board_path))
    server.listen(1)

    def serve() -> None:  # takes the request, reports progress once, then renders on and on
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'{"taken": 2}\n{"working": 1}\n')
            conn.recv(1)  # until the build hangs up

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with pytest.raises(StillRendering) as caught:
            ask_daemon(board_path, True, None, os.getpid(), patience=1.0)
    finally:
        thread.join(60)
        server.close()
    assert "took this build's request and is still rendering (1 chart(s) left" in str(caught.value)


def test_a_build_waiting_when_the_daemon_is_stopped_still_gets_its_answer(tmp_path, daemons):
    board, started, release = held_board(tmp_path)
    d = daemons(board)
    wait_for(started.exists, 60, "the first render to start")
    release.touch()
    d.wait_state("h", state="ok")
    started.unlink()
    release.unlink()
    build = start_cli("build", "--force", "-c", str(board.file))
    try:
        wait_for(started.exists, 60, "the build's render to start")
        d.send(signal.SIGTERM)  # the daemon drains the render in flight, then answers
        release.touch()
        _, err = build.communicate(timeout=120)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert build.returncode == 0, err
    assert "build: 1 rendered, 0 failed, 0 up to date (done by plotboard run" in err
    assert d.proc.wait(60) == 0
