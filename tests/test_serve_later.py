"""Query routes of the built-in server (renderer.serve): a route that answers later, from another
thread, holds no server thread meanwhile; with real sockets against start_server."""

from __future__ import annotations

import http.client
import threading

from conftest import wait_for

from renderer.serve.files import Answer
from renderer.serve.server import Limits, start_server


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_answers_given_later_hold_no_server_thread(tmp_path):
    (tmp_path / "index.html").write_text("hello")
    (tmp_path / "pic.bin").write_bytes(b"\x89data" * 1000)
    held: list = []

    def route(path, query, headers, reply):
        if query == "now":
            reply(Answer(200, b"at once\n", headers=(("X-Kind", "now"),)))
        elif query == "file":
            reply(Answer(200, content_type="application/octet-stream", file=str(tmp_path / "pic.bin")))
        else:
            held.append((query, reply))  # answered later, from another thread

    server = start_server(tmp_path, 0, Limits(threads=1), routes={"/later/": route})
    try:
        waiting: list = []
        threads = [threading.Thread(target=lambda i=i: waiting.append(get(server.port, f"/later/x?{i}")))
                   for i in range(3)]
        for t in threads:
            t.start()
        wait_for(lambda: len(held) == 3, 30, "three requests held by the route")
        # One server thread, three answers pending: files and routes are still answered.
        assert get(server.port, "/index.html")[2] == b"hello"
        status, headers, body = get(server.port, "/later/x?now")
        assert (status, headers["x-kind"], body) == (200, "now", b"at once\n")
        status, headers, body = get(server.port, "/later/x?file")
        assert status == 200 and body == (tmp_path / "pic.bin").read_bytes()
        for query, reply in held:
            threading.Thread(target=reply, args=(Answer(503, f"later {query}\n".encode(),
                                                        headers=(("Retry-After", "2"),)),)).start()
        for t in threads:
            t.join(30)
        assert sorted((s, h["retry-after"], b) for s, h, b in waiting) == \
            [(503, "2", f"later {i}\n".encode()) for i in range(3)]
        assert get(server.port, "/later")[0] == 404  # the prefix alone is no route
    finally:
        server.shutdown()
