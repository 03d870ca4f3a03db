"""The preview server (renderer.serve.server): real HTTP requests against a real folder."""

from __future__ import annotations

import errno
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import chart, cli_env, fast_board, free_port, wait_for, write_data

from renderer.serve.server import OUT_OF_RESOURCES, Limits, start_server

PNG = b"\x89PNG\r\n\x1a\n" + b"first image"


def get(port: int, path: str, method: str = "GET", timeout: float = 10,
        **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def replace(folder: Path, name: str, data: bytes) -> None:
    temp = folder / f".{name}.x.tmp"
    temp.write_bytes(data)
    os.replace(temp, folder / name)


@pytest.fixture
def site(tmp_path: Path):
    folder = tmp_path / "public"
    (folder / "static").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>board</title>")
    (folder / "status.json").write_text('{"charts": []}')
    (folder / "cpu.png").write_bytes(PNG)
    (folder / "static" / "board.css").write_text("body {}")
    (folder / ".cpu.png.abcd.tmp").write_bytes(b"half")
    (tmp_path / "secret.txt").write_text("outside the folder")
    server = start_server(folder, 0)
    try:
        yield folder, server
    finally:
        server.shutdown()


def test_binds_loopback_on_a_free_port_and_shutdown_joins(tmp_path):
    server = start_server(tmp_path, 0)
    port = server.port
    assert server.server_address[0] == "127.0.0.1" and port > 0
    assert server.url == f"http://127.0.0.1:{port}/"
    assert server.thread.is_alive() and server.thread.daemon
    server.shutdown()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_page_and_manifest_are_never_cached(site):
    folder, server = site
    for path in ("/", "/index.html", "/status.json"):
        status, headers, body = get(server.port, path)
        assert status == 200, path
        assert headers["cache-control"] == "no-cache", path
    assert get(server.port, "/")[2] == (folder / "index.html").read_bytes()
    status, headers, body = get(server.port, "/status.json")
    assert headers["content-type"] == "application/json" and body == b'{"charts": []}'


def test_versioned_urls_are_immutable_and_plain_ones_revalidate(site):
    _, server = site
    status, headers, body = get(server.port, "/cpu.png?v=9f2c")
    assert status == 200 and body == PNG
    assert headers["content-type"] == "image/png"
    assert headers["content-length"] == str(len(PNG))
    assert "immutable" in headers["cache-control"]
    assert get(server.port, "/cpu.png")[1]["cache-control"] == "no-cache"
    assert "immutable" in get(server.port, "/static/board.css?v=1")[1]["cache-control"]


def test_etag_revalidation_sees_a_replacement_within_the_same_second(site):
    folder, server = site
    _, first, _ = get(server.port, "/status.json")
    status, headers, body = get(server.port, "/status.json", **{"If-None-Match": first["etag"],
                                                                 "If-Modified-Since": first["last-modified"]})
    assert status == 304 and body == b"" and headers["etag"] == first["etag"]
    # Same size, same second: Last-Modified cannot tell the files apart, the ETag must.
    replace(folder, "status.json", b'{"charts": {}}')
    status, headers, body = get(server.port, "/status.json", **{"If-None-Match": first["etag"],
                                                                 "If-Modified-Since": first["last-modified"]})
    assert status == 200 and body == b'{"charts": {}}'
    assert headers["etag"] != first["etag"]


def test_head_missing_hidden_outside_and_folders(site):
    folder, server = site
    status, headers, body = get(server.port, "/cpu.png", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(PNG))
    assert get(server.port, "/nope.png")[0] == 404
    assert get(server.port, "/.cpu.png.abcd.tmp")[0] == 404  # a publish in progress
    assert get(server.port, "/../secret.txt")[0] == 404
    assert get(server.port, "/%2e%2e/secret.txt")[0] == 404
    assert get(server.port, "/cpu.png/")[0] == 404
    status, headers, _ = get(server.port, "/static")
    assert status == 301 and headers["location"] == "/static/"
    assert get(server.port, "/static/")[0] == 404  # no directory listings


def test_a_stalled_client_does_not_block_others(site):
    _, server = site
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        stalled.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        status, _, body = get(server.port, "/cpu.png?v=1")
        assert status == 200 and body == PNG
    finally:
        stalled.close()


def raw(port: int, request: bytes) -> bytes:
    """Send request bytes as they are; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_symlinks_inside_the_folder_are_never_followed(site):
    folder, server = site
    secret = folder.parent / "secret.txt"
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "secret.txt").symlink_to(secret)
    (folder / "outside").symlink_to(folder.parent, target_is_directory=True)
    (folder / "alias.png").symlink_to("cpu.png")  # inside, but still a link: not served
    for path in ("/passwd", "/secret.txt", "/outside/secret.txt", "/outside/public/cpu.png",
                 "/alias.png", "/outside/", "/outside"):
        status, _, body = get(server.port, path)
        assert status == 404, path
        assert b"outside the folder" not in body and b"root:" not in body, path
    assert get(server.port, "/cpu.png")[2] == PNG


def test_nul_bytes_and_odd_targets_get_an_error_answer_not_a_dropped_connection(site):
    _, server = site
    for target in (b"/%00", b"/cpu.png%00", b"/%00/../secret.txt", b"*", b"cpu.png", b"/%ff%fe"):
        answer = raw(server.port, b"GET " + target + b" HTTP/1.0\r\n\r\n")
        status = answer.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.0 4"), (target, answer[:200])
    assert raw(server.port, b"GET /%00 HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    assert raw(server.port, b"BREW /cpu.png HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 501 ")
    assert b"Error code: 400" in raw(server.port, b"nonsense\r\n\r\n")  # HTTP/0.9: a body alone


def test_if_none_match_star_is_304_for_an_existing_file_only(site):
    _, server = site
    for method in ("GET", "HEAD"):
        status, headers, body = get(server.port, "/cpu.png", method=method, **{"If-None-Match": "*"})
        assert status == 304 and body == b"" and headers["etag"], method
    assert get(server.port, "/status.json", **{"If-None-Match": " * "})[0] == 304
    assert get(server.port, "/nope.png", **{"If-None-Match": "*"})[0] == 404
    assert get(server.port, "/cpu.png", **{"If-None-Match": '"other"'})[0] == 200
    _, first, _ = get(server.port, "/cpu.png")
    assert get(server.port, "/cpu.png", **{"If-None-Match": f'"x", W/{first["etag"]}'})[0] == 304


def test_a_head_that_never_ends_is_closed_after_the_header_timeout(tmp_path):
    (tmp_path / "index.html").write_text("page")
    with start_server(tmp_path, 0, Limits(header_timeout=0.5)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            answer = b""
            while chunk := sock.recv(4096):  # the server closes it: no recv() waits out the 60 s
                answer += chunk
            assert answer.startswith(b"HTTP/1.0 408 ")  # sent only when the head's deadline passes
        assert get(server.port, "/")[2] == b"page"


def test_a_head_too_large_is_refused(site):
    _, server = site
    answer = raw(server.port, b"GET / HTTP/1.0\r\nX: " + b"a" * 20_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 431 ")


def idle_connections(port: int, n: int) -> list[socket.socket]:
    """n connections that each send part of a request head and never finish it."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_at_the_connection_cap_the_oldest_idle_connections_make_room(site):
    folder, _ = site
    with start_server(folder, 0, Limits(connections=8)) as server:
        idle = idle_connections(server.port, 50)
        try:
            status, _, body = get(server.port, "/cpu.png?v=1")
            assert status == 200 and body == PNG
            # At most 8 open at once: the 42 oldest idle ones (at least) were closed.
            wait_for(lambda: sum(map(closed_by_server, idle)) >= 42, 30, "the oldest idle connections to close")
            assert not any(closed_by_server(sock) for sock in idle[-7:])
        finally:
            for sock in idle:
                sock.close()


def low_fd_limit(limit: int):
    """preexec_fn for a child: a soft RLIMIT_NOFILE of `limit` (as `ulimit -n` would set)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return apply


# A sitecustomize module for a child process: it counts what each preview server's loop does
# (each accept() on the listening socket and its outcome, each back-off's resume time, each
# wake-up of its selector) and writes the counts as JSON to $SERVE_PROBE when the process exits.
PROBE = """
import atexit, json, os, time
from renderer.serve import server as serve

servers = []
real_start = serve.BoardServer.start


class Listener:
    def __init__(self, sock):
        self.sock, self.accepts = sock, []

    def fileno(self):
        return self.sock.fileno()

    def accept(self):
        try:
            pair = self.sock.accept()
        except OSError as exc:
            self.accepts.append((time.monotonic(), exc.errno))
            raise
        self.accepts.append((time.monotonic(), 0))
        return pair

    def close(self):
        self.sock.close()


class Selector:
    def __init__(self, real):
        self.real, self.wakeups = real, 0

    def select(self, timeout=None):
        events = self.real.select(timeout)
        self.wakeups += 1
        return events

    def __getattr__(self, name):
        return getattr(self.real, name)


def start(self):
    self.socket, self._selector, self.resumes = Listener(self.socket), Selector(self._selector), []
    back_off = self._back_off

    def counted_back_off(exc):
        back_off(exc)
        self.resumes.append(self._resume_at)

    self._back_off = counted_back_off
    servers.append((os.getpid(), self))
    return real_start(self)


serve.BoardServer.start = start


@atexit.register
def dump():
    mine = [s for pid, s in servers if pid == os.getpid()]
    if mine:
        with open(os.environ["SERVE_PROBE"], "w") as out:
            json.dump([{"accepts": s.socket.accepts, "resumes": s.resumes, "wakeups": s._selector.wakeups}
                       for s in mine], out)
"""


def probed(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """env for a child process whose preview servers are counted (PROBE); the counts' file."""
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(PROBE)
    env = dict(env, SERVE_PROBE=str(folder / "counts.json"))
    env["PYTHONPATH"] = str(folder) + os.pathsep + env.get("PYTHONPATH", "")
    return env, folder / "counts.json"


def assert_not_spinning(counts: Path) -> list[int]:
    """The server's loop woke only for something that happened, whatever the machine's speed:
    after each accept() that failed for want of descriptors, no accept() came before the
    back-off's resume time (at least 50 ms later: a loop spinning on accept() retries at once),
    and the loop's wake-ups are bounded by the connections it accepted and its back-offs (a
    connection wakes it to be accepted, for its head, when it closes or expires, and once when
    answered; a back-off when it ends), not by the time it ran. Returns the errnos of the
    accepts that failed for want of descriptors."""
    (server,) = json.loads(counts.read_text())
    accepts, resumes = server["accepts"], server["resumes"]
    failed = [(i, t) for i, (t, err) in enumerate(accepts) if err in OUT_OF_RESOURCES]
    assert len(failed) == len(resumes), (failed, resumes)
    for (i, failed_at), resume in zip(failed, resumes):
        assert resume >= failed_at + 0.05, (failed_at, resume)
        early = [t for t, _ in accepts[i + 1:] if t < resume]
        assert not early, f"accept() retried {len(early)} times during the back-off after accept #{i}"
    accepted = sum(1 for _, err in accepts if err == 0)
    wakeups = server["wakeups"]
    assert accepted > 0 and wakeups <= 5 * accepted + 2 * len(resumes) + 5, (wakeups, accepted, len(resumes))
    return [accepts[i][1] for i, _ in failed]


SERVER_ONLY = """
import sys
from renderer.serve.server import Limits, start_server
server = start_server(sys.argv[1], 0, Limits(connections=10_000))
print(server.port, flush=True)
sys.stdin.read()
server.shutdown()
"""


def test_out_of_descriptors_the_server_backs_off_instead_of_spinning(site, tmp_path):
    """A cap set above RLIMIT_NOFILE, as when the rest of the process has used the
    descriptors: accept() fails with EMFILE, and the server must neither spin nor stop."""
    folder, _ = site
    env, counts = probed(tmp_path, cli_env())
    proc = subprocess.Popen([sys.executable, "-c", SERVER_ONLY, str(folder)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=low_fd_limit(64))
    try:
        port = int(proc.stdout.readline())
        idle = idle_connections(port, 200)
        try:
            status, _, body = get(port, "/cpu.png?v=1")  # queued behind the 200 idle ones
            assert status == 200 and body == PNG
        finally:
            for sock in idle:
                sock.close()
        assert get(port, "/status.json")[0] == 200
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert errno.EMFILE in assert_not_spinning(counts)  # it did run out of descriptors, and backed off


def test_idle_clients_under_a_low_fd_limit_starve_neither_renders_nor_requests(tmp_path, daemons):
    """`plotboard run --serve` under `ulimit -n 128`, with 200 connections that never finish
    their request: a render still completes and is published, ordinary requests are answered,
    the server stays under the limit (the oldest idle connections make room) and does not spin."""
    board = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"))
    board.data("data/a.txt", "1 2 3\n")
    port = free_port()
    env, counts = probed(tmp_path, cli_env())
    d = daemons(board, "--serve", str(port), env=env, preexec_fn=low_fd_limit(128))
    first = d.wait_state("a", state="ok")
    before = d.image("a")
    idle = idle_connections(port, 200)
    try:
        write_data(board.root / "data" / "a.txt", [3, 1, 2, 5])
        image = d.new_image("a", before, timeout=120)
        d.wait_state("a", state="ok", renders=first["renders"] + 1)
        status, _, body = get(port, "/a.png?v=new")
        assert status == 200 and body == image
        assert get(port, "/")[0] == 200
    finally:
        for sock in idle:
            sock.close()
    assert "Too many open files" not in d.log
    assert d.stop() == 0
    assert assert_not_spinning(counts) == []  # never out of descriptors: the cap kept it below the limit


TCP_ESTABLISHED, TCP_CLOSE, TCP_CLOSE_WAIT = 1, 7, 8


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of this end (Linux TCP_INFO): ESTABLISHED until the server closes."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]


def slow_readers(port: int, path: str, n: int) -> list[socket.socket]:
    """n clients that send a request and never read: a small receive buffer, so the server's
    sends to them fill up at once."""
    socks = []
    for _ in range(n):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(60)
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        socks.append(sock)
    return socks


def test_slow_readers_holding_more_than_the_threads_do_not_delay_others(tmp_path):
    big = b"x" * (32 << 20)  # more than the socket buffers hold
    (tmp_path / "big.png").write_bytes(big)
    (tmp_path / "index.html").write_text("page")
    with start_server(tmp_path, 0, Limits(threads=2, send_timeout=600)) as server:
        slow = slow_readers(server.port, "/big.png", 6)
        try:
            status, _, body = get(server.port, "/index.html", timeout=60)
            assert status == 200 and body == b"page"
            status, _, body = get(server.port, "/big.png", timeout=60)
            assert status == 200 and body == big
            # Answered while every slow reader was still connected, not after they were dropped.
            assert [tcp_state(sock) for sock in slow] == [TCP_ESTABLISHED] * len(slow)
        finally:
            for sock in slow:
                sock.close()
    assert not server.thread.is_alive()


def test_a_reader_that_does_not_read_is_dropped_at_its_deadline(tmp_path):
    size = 32 << 20
    (tmp_path / "big.png").write_bytes(b"x" * size)
    (tmp_path / "index.html").write_text("page")
    with start_server(tmp_path, 0, Limits(threads=1, send_timeout=0.5)) as server:
        (sleeper,) = slow_readers(server.port, "/big.png", 1)
        with sleeper:
            # The server closes its end at the deadline, without waiting for the client to read.
            wait_for(lambda: tcp_state(sleeper) in (TCP_CLOSE, TCP_CLOSE_WAIT), 60,
                     "the server to drop the slow reader")
            received = 0
            try:
                while chunk := sleeper.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            assert received < size  # dropped, not answered in full
        assert get(server.port, "/")[2] == b"page"
