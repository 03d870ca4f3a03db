"""/events (renderer.serve.events): server-sent events from the built-in server, with real sockets;
and from `plotboard run --serve`, one event each time the page's manifests change."""

from __future__ import annotations

import json
import signal
import socket
import threading
from pathlib import Path

from conftest import chart, fast_board, free_port, wait_for, write_data
from test_serve import get

from renderer.serve.server import Limits, start_server


class Stream:
    """A raw client of /events: reads what arrives, split into messages (blank-line ended)."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        self.data = b""
        self.eof = False

    def head(self) -> tuple[str, bytes]:
        """The status line and headers (waits for them)."""
        while b"\r\n\r\n" not in self.data:
            if self.eof:
                raise EOFError("the stream ended before its headers")
            self._more()
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        return head.decode(), head

    def message(self) -> bytes:
        """The next message: a comment (b":") or an event's lines; b"" at the end of the stream."""
        while b"\n\n" not in self.data:
            if self.eof:
                return b""
            self._more()
        message, _, self.data = self.data.partition(b"\n\n")
        return message

    def event(self) -> bytes:
        """The next event's data, skipping comments (b"" at the end of the stream)."""
        while (m := self.message()) and m.startswith(b":"):
            pass
        return m

    def _more(self) -> None:
        chunk = self.sock.recv(4096)
        self.eof = not chunk
        self.data += chunk

    def close(self) -> None:
        self.sock.close()


def test_a_stream_answers_with_heartbeats_and_an_event_per_notice(tmp_path):
    (tmp_path / "index.html").write_text("page")
    with start_server(tmp_path, 0, Limits(heartbeat=0.2)) as server:
        s = Stream(server.port)
        try:
            status, head = s.head()
            assert status.startswith("HTTP/1.0 200")
            assert b"Content-Type: text/event-stream" in head and b"X-Accel-Buffering: no" in head
            assert b"Cache-Control: no-store" in head
            for _ in range(3):  # the first with the headers, then one per heartbeat
                assert s.message() == b":"
            server.events.notify()
            assert s.event().startswith(b"data: ")
            # Files are still answered meanwhile, and by the pool as before.
            assert get(server.port, "/index.html")[2] == b"page"
            server.events.notify()
            assert s.event().startswith(b"data: ")
        finally:
            s.close()


def test_at_the_cap_a_new_stream_gets_503_and_the_open_ones_stay(tmp_path):
    (tmp_path / "index.html").write_text("page")
    with start_server(tmp_path, 0, Limits(streams=2)) as server:
        first, second = Stream(server.port), Stream(server.port)
        try:
            for s in (first, second):
                assert s.head()[0].startswith("HTTP/1.0 200")
            status, headers, _ = get(server.port, "/events")
            assert status == 503 and headers["retry-after"].isdigit()
            assert get(server.port, "/index.html")[2] == b"page"  # files are not capped by streams
            server.events.notify()
            assert first.event().startswith(b"data: ") and second.event().startswith(b"data: ")
            first.close()  # a stream that ends makes room
            wait_for(lambda: len(server.events) == 1, 60, "the server to see the stream end")
            third = Stream(server.port)
            assert third.head()[0].startswith("HTTP/1.0 200")
            third.close()
        finally:
            first.close()
            second.close()


def test_a_reader_that_never_reads_is_dropped_and_memory_stays_bounded(tmp_path):
    with start_server(tmp_path, 0, Limits(send_timeout=0.5)) as server:
        sleeper = Stream(server.port, rcvbuf=4096)  # sends its request, never reads
        wait_for(lambda: len(server.events) == 1, 60, "the stream to open")
        most, stop = [0], threading.Event()

        def changes() -> None:  # a change every millisecond: the buffers fill up, then a write waits
            while not stop.wait(0.001):
                server.events.notify()

        def dropped() -> bool:
            for stream in list(server.events._streams.values()):
                most[0] = max(most[0], len(stream.pending))
            return server.events.dropped == 1

        changer = threading.Thread(target=changes)
        changer.start()
        try:
            wait_for(dropped, 60, "the server to drop a stream that is not read")
            assert len(server.events) == 0
            assert most[0] < 200  # at most one unsent message held, however many changes came
        finally:
            stop.set()
            changer.join()
            sleeper.close()
        reader = Stream(server.port)  # the server carries on
        assert reader.head()[0].startswith("HTTP/1.0 200")
        reader.close()


def test_shutdown_ends_every_stream_cleanly(tmp_path):
    server = start_server(tmp_path, 0, Limits())
    streams = [Stream(server.port) for _ in range(3)]
    try:
        for s in streams:
            s.head()
            assert s.message() == b":"
        done = threading.Thread(target=server.shutdown)
        done.start()
        for s in streams:  # an orderly end (FIN), not a reset, and not left hanging
            assert s.sock.recv(4096) == b""
        done.join(60)
        assert not done.is_alive() and not server.thread.is_alive()
    finally:
        for s in streams:
            s.close()


def test_run_serve_sends_an_event_each_time_the_manifests_change(tmp_path, daemons):
    board = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"))
    board.data("data/a.txt", "1 2 3\n")
    port = free_port()
    d = daemons(board, "--serve", str(port))
    d.wait_state("a", state="ok")
    s = Stream(port)
    try:
        assert s.head()[0].startswith("HTTP/1.0 200")
        for values in ([3, 1, 2], [5, 4, 6]):
            before = d.state("a").get("hash")
            write_data(board.root / "data" / "a.txt", values)
            # Events come once the manifests are written: by one of them (a burst may write the
            # pages twice), what a page fetches shows the new image; none would time the read out.
            for _ in range(5):
                assert s.event().startswith(b"data: ")
                if d.state("a").get("hash") not in (before, None):
                    break
            else:
                raise AssertionError("five events, and status.json still shows the old image")
        d.send(signal.SIGTERM)
        for _ in range(5):  # the stream ends with the daemon, cleanly (after its last pages, if any)
            if s.event() == b"":
                break
        else:
            raise AssertionError("the stream did not end")
        assert d.stop() == 0
    finally:
        s.close()
