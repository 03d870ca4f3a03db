"""A preview web server for the output folder: stdlib, bounded, bound to 127.0.0.1 unless a host
is given; the daemon adds routes answered by a callable (`/metrics`) without this room knowing them.

It sends the same caching headers as deploy/nginx.conf: `no-cache` for the page and
status.json, long-lived caching for versioned URLs (`NAME.png?v=HASH`). Validation uses a
strong ETag built from the file's inode, mtime in nanoseconds and size, never
If-Modified-Since alone: that has one-second precision, and an image replaced twice within
a second would get a stale 304.

No client can starve the daemon it runs in (README.md, "The built-in server", says how): a
selectors loop accepts and reads request heads without blocking, so an idle connection costs a
descriptor, never a thread; a fixed pool of threads makes the answers to complete heads (opening
the file, headers) and hands them back to the loop, which sends them without blocking, so a
client that does not read holds no thread; connections are capped below RLIMIT_NOFILE (at the
cap the oldest unfinished head is dropped; an answer being sent holds its file open too: two
descriptors at most a connection); a head has a deadline from its connection, an answer one
for the whole of it from its head (a client that has not read it all by then is reset); accept
backs off when out of descriptors instead of spinning. Files are opened
segment by segment with O_NOFOLLOW: no symlink below the folder is ever followed.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import resource
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from renderer.errors import PlotboardError
from renderer.serve.files import Handler, Output, Route
from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")

HOST = "127.0.0.1"
BACKLOG = 1024  # the kernel caps it at net.core.somaxconn
MAX_HEAD = 16 * 1024  # bytes of request line and headers
ACCEPT_BATCH = 64  # accepts per readiness event of the listening socket
OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def default_connection_cap() -> int:
    """A quarter of the soft RLIMIT_NOFILE, between 8 and 512: the rest is for the renders."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(8, min(512, soft // 4))


@dataclass(frozen=True)
class Limits:
    """How much of the process one server may use; None: default_connection_cap()."""

    connections: int | None = None
    threads: int = 4
    header_timeout: float = 10.0
    send_timeout: float = 20.0


def _head_complete(buffer: bytearray, start: int) -> bool:
    """Whether the head has ended, looking only at bytes from `start` on (the new ones)."""
    return buffer.find(b"\r\n\r\n", start) >= 0 or buffer.find(b"\n\n", start) >= 0


class BoardServer:
    """The server; its loop runs in `thread` (a daemon thread), its answers in a fixed pool of
    daemon threads. shutdown() (or leaving a `with` block) stops both and joins them.

    If one of these threads dies (a bug), `on_thread_death` is told its name; a dead loop has
    closed the listening socket, so clients are refused rather than left waiting."""

    def __init__(self, folder: Path, port: int, limits: Limits | None = None,
                 on_thread_death: Died | None = None, host: str = HOST,
                 routes: Mapping[str, Route] | None = None) -> None:
        self.folder = os.fspath(folder)
        self.limits = limits or Limits()
        self.routes = dict(routes or {})  # paths answered by a callable (the daemon's /metrics), not a file
        self.cap = self.limits.connections or default_connection_cap()
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self.socket.setblocking(False)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._accepting = False
        self._resume_at = 0.0  # no accept before this (monotonic), after running out of fds
        self._backoff = 0.0
        # Connections still sending their heads, oldest first: deadline and bytes so far (None:
        # refused, its bytes are read and dropped until it closes, so it sees the answer).
        self._heads: dict[socket.socket, tuple[float, bytearray | None]] = {}
        self._lock = threading.Lock()
        self._answering: set[socket.socket] = set()  # handed to the pool, not yet closed
        self._jobs: queue.SimpleQueue[tuple[socket.socket, bytes, float] | None] = queue.SimpleQueue()
        # Answers made by the pool, for the loop to send (None: nothing to send, close it).
        self._ready: queue.SimpleQueue[tuple[socket.socket, Output | None]] = queue.SimpleQueue()
        self._sending: dict[socket.socket, Output] = {}  # the loop's, being sent
        self._stopping = False
        self.thread = guarded_thread(f"plotboard-serve-{self.port}", self._loop, on_thread_death)
        self._pool = [guarded_thread(f"plotboard-serve-{self.port}-{i}", self._answer_jobs, on_thread_death)
                      for i in range(self.limits.threads)]

    @property
    def port(self) -> int:
        """The port actually bound (useful when started with port 0)."""
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{_netloc(self.host, self.port)}/"

    def start(self) -> "BoardServer":
        for t in self._pool:
            t.start()
        self.thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving, close every connection and the socket, and join all threads."""
        self._stopping = True
        self._wake()
        if self.thread.is_alive():
            self.thread.join()
        for _ in self._pool:
            self._jobs.put(None)
        for t in self._pool:
            if t.is_alive():
                t.join()
        while not self._ready.empty():  # answered after the loop stopped
            sock, output = self._ready.get()
            if output is not None:
                _quietly(output.send, sock)  # what fits at once goes (a stopping daemon's 503s)
                output.discard()
        with self._lock:
            for sock in self._answering:  # handed over but never sent
                sock.close()
            self._answering.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "BoardServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- the loop: accepting and reading heads ----------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._stopping:
                now = time.monotonic()
                self._expire(now)
                self._listen(now)
                for key, _ in self._selector.select(self._timeout(now)):
                    if key.fileobj is self.socket:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        _quietly(self._wake_r.recv, 4096)
                        self._take_answers()
                    elif key.fileobj in self._sending:
                        self._write(key.fileobj)  # type: ignore[arg-type]
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
        finally:  # stopped, or died (the guard logs it and tells the owner)
            for sock in list(self._heads):
                self._drop(sock)
            for sock in list(self._sending):
                self._done(sock)
            self.socket.close()

    def _open_connections(self) -> int:
        with self._lock:
            return len(self._heads) + len(self._answering)

    def _listen(self, now: float) -> None:
        """Watch the listening socket unless backing off, or at the cap with nothing to evict."""
        want = now >= self._resume_at and (bool(self._heads) or self._open_connections() < self.cap)
        if want != self._accepting:
            if want:
                self._selector.register(self.socket, selectors.EVENT_READ)
            else:
                self._selector.unregister(self.socket)
            self._accepting = want

    def _timeout(self, now: float) -> float | None:
        times = [deadline for deadline, _ in self._heads.values()][:1]  # the oldest expires first
        if self._sending:
            times.append(min(output.deadline for output in self._sending.values()))
        if not self._accepting and self._resume_at > now:
            times.append(self._resume_at)
        return max(0.0, min(times) - now) if times else None

    def _expire(self, now: float) -> None:
        while self._heads:
            sock, (deadline, head) = next(iter(self._heads.items()))
            if deadline > now:
                break
            if head is not None:
                _quietly(sock.send, b"HTTP/1.0 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            self._drop(sock)
        for sock, output in list(self._sending.items()):
            if output.deadline <= now:
                self._done(sock, reset=True)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._open_connections() >= self.cap and not self._heads:
                return  # all answering: _listen stops watching until one is done
            try:
                sock, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:
                    self._back_off(exc)
                    break
                continue  # ECONNABORTED and the like: that client is gone
            self._backoff = 0.0
            if self._open_connections() >= self.cap:
                self._drop(next(iter(self._heads)))  # the oldest head still on its way
            sock.setblocking(False)
            _quietly(sock.setsockopt, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._heads[sock] = (time.monotonic() + self.limits.header_timeout, bytearray())
            try:
                self._selector.register(sock, selectors.EVENT_READ)
            except (OSError, ValueError):
                self._drop(sock)
                continue
            self._read(sock)  # a local client's request is usually there already

    def _back_off(self, exc: OSError) -> None:
        """Out of descriptors: pause accepting, and free the older half of the connections
        still sending their heads (a local client sends its head at once: these are idle)."""
        first = self._backoff == 0.0 and time.monotonic() - self._resume_at > 10
        self._backoff = min(1.0, max(0.05, self._backoff * 2))
        self._resume_at = time.monotonic() + self._backoff
        for sock in list(self._heads)[:max(1, len(self._heads) // 2)]:
            self._drop(sock)
        log.log(logging.WARNING if first else logging.DEBUG,  # once an episode, not 20 times a second
                "serve: cannot accept (%s); pausing new connections", os.strerror(exc.errno or 0))

    def _read(self, sock: socket.socket) -> None:
        entry = self._heads.get(sock)
        if entry is None:
            return
        try:
            data = sock.recv(MAX_HEAD + 1 - len(entry[1] or b""))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        deadline, head = entry
        if head is None:
            return
        scanned = max(0, len(head) - 3)
        head += data
        if len(head) > MAX_HEAD:
            # Close only once the client has stopped sending: a close with unread bytes
            # resets the connection, and the client could lose the answer.
            _quietly(sock.send, b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
            _quietly(sock.shutdown, socket.SHUT_WR)
            self._heads[sock] = (deadline, None)
        elif _head_complete(head, scanned):
            self._selector.unregister(sock)
            with self._lock:
                del self._heads[sock]
                self._answering.add(sock)
            self._jobs.put((sock, bytes(head), time.monotonic() + self.limits.send_timeout))

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._heads.pop(sock, None)
        _quietly(self._selector.unregister, sock)
        sock.close()

    def _take_answers(self) -> None:
        while not self._ready.empty():
            sock, output = self._ready.get()
            if output is None or self._stopping:
                if output is not None:
                    _quietly(output.send, sock)  # what fits at once goes (a stopping daemon's 503s)
                self._done(sock)
            elif output.deadline <= time.monotonic():
                self._done(sock, reset=True)
            else:
                self._sending[sock] = output
                self._write(sock)  # a local client usually takes a small answer at once

    def _write(self, sock: socket.socket) -> None:
        try:
            if not self._sending[sock].send(sock):
                if sock not in self._selector.get_map():
                    self._selector.register(sock, selectors.EVENT_WRITE)
                return
        except (OSError, ValueError):  # the client has gone (ValueError: not registrable)
            self._done(sock, reset=True)
            return
        self._done(sock)

    def _done(self, sock: socket.socket, reset: bool = False) -> None:
        """Close an answered connection; reset: at once, dropping what is still unsent (a
        client that did not read it in time leaves nothing behind in the kernel)."""
        output = self._sending.pop(sock, None)
        if output is not None:
            output.discard()
        with self._lock:
            self._answering.discard(sock)
        _quietly(self._selector.unregister, sock)
        if reset:
            _quietly(sock.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def _wake(self) -> None:
        _quietly(self._wake_w.send, b"\0")

    # -- the pool: answering ----------------------------------------------------------------------

    def _answer_jobs(self) -> None:
        while (job := self._jobs.get()) is not None:
            sock, head, deadline = job
            output: Output | None = Output(deadline)
            try:
                if not self._stopping:
                    Handler((sock, head, output), sock.getpeername(), self, directory=self.folder)
            except Exception:  # noqa: BLE001 - a client that goes away mid-answer is normal
                log.debug("serve: error while answering", exc_info=True)
                output.discard()  # type: ignore[union-attr]
                output = None
            finally:
                if output is not None and output.later is not None:  # a query route answers later
                    output.later.then(lambda s=sock, o=output: self._answered(s, o))
                else:
                    self._ready.put((sock, output))
                    self._wake()  # the loop sends it, and may listen again once it is done

    def _answered(self, sock: socket.socket, output: Output) -> None:
        """A query route's answer, given later (on any thread): sent with a deadline from now."""
        if self._stopping:
            output.discard()  # the socket is closed by shutdown
            return
        output.deadline = time.monotonic() + self.limits.send_timeout
        self._ready.put((sock, output))
        self._wake()


def _quietly(func: Callable[..., object], *args: object) -> object:
    """func(*args), or None when it raises OSError (or KeyError, ValueError: not registered)."""
    try:
        return func(*args)
    except (OSError, KeyError, ValueError):
        return None


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_server(folder: Path, port: int, limits: Limits | None = None,
                 on_thread_death: Died | None = None, host: str = HOST,
                 routes: Mapping[str, Route] | None = None) -> BoardServer:
    """Serve folder on host:port (127.0.0.1; port 0: any free port) from daemon threads;
    `routes`: paths answered by a callable instead of a file."""
    return BoardServer(folder, port, limits, on_thread_death, host, routes).start()


def serve_board(folder: Path, address: int | tuple[str, int], on_thread_death: Died | None = None,
                routes: Mapping[str, Route] | None = None) -> BoardServer:
    """start_server for the daemon's --serve (a port, or host and port): an address that cannot
    be had is a user error."""
    host, port = address if isinstance(address, tuple) else (HOST, address)
    try:
        server = start_server(folder, port, on_thread_death=on_thread_death, host=host, routes=routes)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name that IDNA refuses
        raise PlotboardError(f"cannot serve on {_netloc(host, port)}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
    log.info("serving %s on %s", folder, server.url)
    return server
