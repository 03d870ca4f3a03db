"""How a `plotboard build` has the running daemon do its work, instead of waiting for it.

The daemon listens on an abstract unix socket named for the board file (its folder's device and
inode, and its file name), so deleting `.plotboard/` cannot take it away and two board files in
one folder have two sockets; only processes of the same user (or root) are heard. A build sends
one JSON line, `{"board": PATH, "force": false, "only": null}`; the daemon answers at once
`{"taken": N}` (N renders to wait for), then `{"working": N}` each time a render is published
while the build waits, and last `{"rendered": [...], "failed": [...], "up_to_date": [...], "pid":
N}` (or `{"error": "..."}`) once the pages are written.

Anyone can bind an abstract name, so the build believes an answer only from a process of its own
user (or root) whose pid the board's lock names (SO_PEERCRED; renderer.daemon.client).

One thread serves the socket without ever blocking on a client: the whole request must arrive
within READ_TIMEOUT, each answer be taken within WRITE_TIMEOUT, or the client is dropped;
connections of other users are closed as soon as they are accepted. The loop does the work and
keeps each request's account (renderer.daemon.builds); its answers are handed to this thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")

MAX_REQUEST = 64 * 1024
READ_TIMEOUT = 5.0  # the whole request must arrive within this
WRITE_TIMEOUT = 5.0  # a client that does not read an answer within this is dropped
MAX_CLIENTS = 256  # requests being read at once; beyond this the oldest is dropped


def address(board_path: Path) -> str:
    """The socket's abstract name: the board file's folder (device, inode) and file name."""
    st = os.stat(board_path.parent)
    name = hashlib.sha256(os.fsencode(board_path.name)).hexdigest()[:16]
    return f"\0plotboard-{st.st_dev:x}-{st.st_ino:x}-{name}"


def peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a unix socket."""
    pid, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid, uid


@dataclass(eq=False)
class Request:
    """A build's request as it came in: what it asks for, and how to answer it."""

    conn: socket.socket
    force: bool
    only: list[str] | None
    board: str | None = None
    post: Callable[["Request", bytes, bool], bool] | None = field(default=None, repr=False)

    def send(self, **message: object) -> None:
        """A line that is not the last (taken, working)."""
        self._put(message, last=False)

    def answer(self, **message: object) -> None:
        """The result (or an error); the connection is closed once it is sent."""
        self._put(message, last=True)

    def _put(self, message: dict, last: bool) -> None:
        data = json.dumps(message, allow_nan=False).encode() + b"\n"
        if self.post is not None and self.post(self, data, last):
            return
        try:  # the server has stopped (or none, a test's request): one send, never blocking
            self.conn.setblocking(False)
            self.conn.send(data)
        except OSError:
            pass
        if last:
            self.conn.close()


def parse_request(line: bytes) -> tuple[bool, list[str] | None, str | None]:
    """(force, only, board) from a request line; ValueError when it is not of that shape."""
    try:
        data = json.loads(line)
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not isinstance(data, dict):
        raise ValueError("not an object")
    force, only, board = data.get("force", False), data.get("only"), data.get("board")
    if not isinstance(force, bool) or not (only is None or (isinstance(only, list)
                                                             and all(isinstance(n, str) for n in only))):
        raise ValueError("bad field types")
    if board is not None and not isinstance(board, str):
        raise ValueError("bad field types")
    return force, only, board


@dataclass(eq=False)
class _Client:
    conn: socket.socket
    deadline: float
    inbox: bytes = b""
    outbox: bytes = b""
    closing: bool = False  # close once the outbox is sent
    request: Request | None = None


class ControlServer:
    """Listens for build requests while the daemon runs (a context manager).

    If the serving thread dies (a bug), `on_thread_death` is told its name, and the socket is
    closed, so that a build is refused at once instead of waiting for an answer."""

    def __init__(self, board_path: Path, wake: Callable[[], None], on_thread_death: Died | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.wake, self.clock = wake, clock
        self._requests: "queue.SimpleQueue[Request]" = queue.SimpleQueue()
        self._out: "queue.SimpleQueue[tuple[Request, bytes, bool]]" = queue.SimpleQueue()
        self._clients: dict[socket.socket, _Client] = {}
        self._stop = self._stopped = False
        self._stop_by = 0.0  # once stopping: answers still being sent until then
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.bind(address(board_path))
            self._sock.listen(128)
            self._sock.setblocking(False)
            self._waker_r, self._waker_w = socket.socketpair()
        except OSError:
            self._sock.close()
            raise
        for s in (self._waker_r, self._waker_w):
            s.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._sock, selectors.EVENT_READ)
        self._sel.register(self._waker_r, selectors.EVENT_READ)
        self._thread = guarded_thread("plotboard-control", self._serve, on_thread_death,
                                      cleanup=lambda exc: self._close_all())
        self._thread.start()

    def __enter__(self) -> "ControlServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the serving thread ---------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while self._serve_once():
                pass
        finally:
            self._close_all()

    def _serve_once(self) -> bool:
        """One round: wait for sockets ready (or a deadline), serve them; False once stopped."""
        if self._stop and not (self.clock() < self._stop_by and self._sending()):
            return False
        timeout = min((c.deadline for c in self._clients.values()), default=float("inf"))
        timeout = None if timeout == float("inf") else timeout
        if timeout is not None:
            timeout = max(0.0, timeout - self.clock())
        if self._stop:
            timeout = max(0.0, min(timeout if timeout is not None else WRITE_TIMEOUT,
                                   self._stop_by - self.clock()))
        for key, events in self._sel.select(timeout):
            if key.fileobj is self._sock:
                self._accept()
            elif key.fileobj is self._waker_r:
                self._drain_waker()
            else:
                self._ready(self._clients.get(key.fileobj), events)
        self._take_out()
        self._expire()
        return True

    def _sending(self) -> bool:
        return not self._out.empty() or any(c.outbox for c in self._clients.values())

    def _accept(self) -> None:
        for _ in range(64):  # a flood of connections: the loop still gets to the others
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                _, uid = peer(conn)
            except OSError:
                conn.close()
                continue
            if uid not in (0, os.geteuid()):
                conn.close()
                continue
            if len(self._clients) >= MAX_CLIENTS:
                oldest = min((c for c in self._clients.values() if c.request is None),
                             key=lambda c: c.deadline, default=None)
                if oldest is None:
                    conn.close()
                    continue
                self._drop(oldest)
            conn.setblocking(False)
            self._clients[conn] = _Client(conn, self.clock() + READ_TIMEOUT)
            self._sel.register(conn, selectors.EVENT_READ)

    def _drain_waker(self) -> None:
        try:
            while self._waker_r.recv(4096):
                pass
        except OSError:
            pass

    def _ready(self, client: _Client | None, events: int) -> None:
        if client is None:
            return
        try:
            if events & selectors.EVENT_READ:
                self._read(client)
            if client.conn in self._clients and events & selectors.EVENT_WRITE:
                self._write(client)
        except OSError:
            self._drop(client)

    def _read(self, client: _Client) -> None:
        chunk = client.conn.recv(4096)
        if client.request is not None or client.closing:  # only a hang-up is of interest now
            if not chunk:
                self._drop(client)
            return
        client.inbox += chunk
        if chunk and not client.inbox.endswith(b"\n") and len(client.inbox) < MAX_REQUEST:
            return
        try:
            force, only, board = parse_request(client.inbox)
        except ValueError as exc:
            log.warning("control: a bad request (%s)", exc)
            self._queue(client, json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n", last=True)
            return
        client.request = Request(client.conn, force, only, board, self._post)
        client.deadline = float("inf")  # the loop answers it
        self._requests.put(client.request)
        self.wake()

    def _write(self, client: _Client) -> None:
        sent = client.conn.send(client.outbox)
        client.outbox = client.outbox[sent:]
        if client.outbox:
            return
        if client.closing:
            self._drop(client)
        else:
            client.deadline = float("inf")
            self._sel.modify(client.conn, selectors.EVENT_READ)

    def _queue(self, client: _Client, data: bytes, last: bool) -> None:
        client.outbox += data
        client.closing |= last
        client.deadline = self.clock() + WRITE_TIMEOUT
        self._sel.modify(client.conn, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def _take_out(self) -> None:
        while True:
            try:
                request, data, last = self._out.get_nowait()
            except queue.Empty:
                return
            client = self._clients.get(request.conn)
            if client is not None and client.request is request:
                self._queue(client, data, last)

    def _expire(self) -> None:
        now = self.clock()
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.conn, None)
        try:
            self._sel.unregister(client.conn)
        except (KeyError, ValueError):
            pass
        client.conn.close()

    def _close_all(self) -> None:
        """Close the socket and every client but those the loop is to answer: once this thread has
        stopped, their answers are sent at once, without waiting (Request._put)."""
        self._stopped = True
        for client in list(self._clients.values()):
            if client.request is None or client.closing:
                self._drop(client)
        self._sock.close()

    # -- the loop's side ------------------------------------------------------------------------

    def _post(self, request: Request, data: bytes, last: bool) -> bool:
        """Hand an answer to the serving thread; False once it has stopped."""
        if self._stopped:
            return False
        self._out.put((request, data, last))
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass  # the waker's buffer is full (the thread is awake anyway), or it has stopped
        return True

    def take(self) -> list[Request]:
        """The requests that came in since the last call."""
        got = []
        while True:
            try:
                got.append(self._requests.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        """Answer what is left, send it (within WRITE_TIMEOUT) and stop."""
        for request in self.take():
            request.answer(error="plotboard run is stopping")
        self._stop_by = self.clock() + WRITE_TIMEOUT
        self._stop = True
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout=WRITE_TIMEOUT + 5)
        self._stopped = True
        while True:  # handed over as the thread stopped: sent at once
            try:
                request, data, last = self._out.get_nowait()
            except queue.Empty:
                break
            request.post = None
            request._put(json.loads(data), last)
        self._waker_r.close()
        self._waker_w.close()
