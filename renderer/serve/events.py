"""`/events`: server-sent events that tell open pages the moment the manifests change, so a page
fetches at once instead of at its next poll (README.md, "The built-in server", says what a
client sees).

The streams live in the server's selectors loop (renderer.serve.server): an idle stream costs a
descriptor, never a thread. notify() (any thread: the daemon after it wrote the pages) bumps a
counter and wakes the loop, whose next turn queues one `data:` event on every stream; a comment
line (`:`) goes out every `heartbeat` seconds, so that proxies and the page see the stream alive.

Memory is bounded: a stream holds at most one unsent message (an event coming while one is still
unsent is merged into it: the page fetches the newest manifests either way) and a small kernel
send buffer. A deadline applies to each write, not to the whole answer: a message not taken by
the client within `send_timeout` drops the stream (reset, so the kernel frees its buffer too).
Streams are capped: at the cap a new one is answered 503 with Retry-After and the open ones are
kept (dropping the oldest would have pages take turns dropping each other for ever); its page
polls meanwhile. On shutdown every stream is ended cleanly (a FIN after what was sent).
"""

from __future__ import annotations

import itertools
import logging
import selectors
import socket
import struct
import time
from typing import Callable

from renderer.serve.limits import default_stream_cap

log = logging.getLogger("plotboard")

PATH = b"/events"
HEARTBEAT = 30.0  # seconds between comment lines at most
SEND_BUFFER = 4096  # the kernel's send buffer of a stream (it doubles it): a few messages
RETRY_AFTER = 60  # seconds, in the 503 answer at the cap
HEADERS = (b"HTTP/1.0 200 OK\r\nServer: plotboard\r\nContent-Type: text/event-stream\r\n"
           b"Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n\r\n:\n\n")
FULL = (b"HTTP/1.0 503 Service Unavailable\r\nServer: plotboard\r\nContent-Type: text/plain\r\n"
        b"Retry-After: %d\r\nContent-Length: 18\r\nCache-Control: no-store\r\n\r\ntoo many streams.\n" % RETRY_AFTER)
BEAT = b":\n\n"


def is_events(head: bytes) -> bool:
    """Whether the request head asks GET /events (with or without a query string)."""
    line = head.split(b"\n", 1)[0].split()
    return len(line) >= 2 and line[0] == b"GET" and line[1].split(b"?", 1)[0] == PATH


class _Stream:
    __slots__ = ("pending", "deadline", "event")

    def __init__(self, pending: bytes, deadline: float) -> None:
        self.pending = pending  # what is queued and not yet taken by the kernel
        self.deadline = deadline  # by when `pending` must be taken (while there is some)
        self.event = False  # `pending` holds (the rest of) an event


class Streams:
    """The open /events streams of one server; every method but notify() runs in its loop."""

    def __init__(self, selector: selectors.BaseSelector, wake: Callable[[], None], cap: int | None = None,
                 heartbeat: float = HEARTBEAT, send_timeout: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.selector, self.wake, self.clock = selector, wake, clock
        self.cap = cap or default_stream_cap()
        self.heartbeat, self.send_timeout = heartbeat, send_timeout
        self._streams: dict[socket.socket, _Stream] = {}  # oldest first
        self._counter = itertools.count(1)
        self._changes = 0  # notify()'s count (written by any thread; an int assignment is atomic)
        self._told = 0  # the count the streams were last told of
        self._next_beat = clock() + heartbeat
        self.refused = self.dropped = 0  # at the cap; too slow to read

    def __len__(self) -> int:
        return len(self._streams)

    def notify(self) -> None:
        """The manifests changed: every stream gets an event at the loop's next turn (any thread)."""
        self._changes = next(self._counter)
        self.wake()

    def adopt(self, sock: socket.socket, head: bytes) -> bool:
        """Keep a connection whose request head asks for /events as a stream (True), or leave
        it to the ordinary answers (False)."""
        if not is_events(head):
            return False
        if len(self._streams) >= self.cap:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("serve: %d /events streams open (the cap); answering 503 (%d so far)",
                            len(self._streams), self.refused)
            _try(sock.send, FULL)
            _try(sock.shutdown, socket.SHUT_WR)
            sock.close()
            return True
        _try(sock.setsockopt, socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self._streams[sock] = _Stream(HEADERS, self.clock() + self.send_timeout)
        try:
            self.selector.register(sock, selectors.EVENT_READ, self)
        except (OSError, ValueError):
            self._close(sock, reset=True)
            return True
        self._flush(sock)
        return True

    def ready(self, sock: socket.socket) -> None:
        """The selector says the stream's socket is readable or writable."""
        stream = self._streams.get(sock)
        if stream is None:
            return
        if stream.pending:
            self._flush(sock)
            if sock not in self._streams:
                return
        try:
            data = sock.recv(4096)  # a client says nothing on a stream: only its close matters
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(sock, reset=bool(self._streams[sock].pending))

    def tick(self, now: float) -> None:
        """At each turn of the loop: queue what is due, drop streams whose write is overdue."""
        if not self._streams:
            self._told, self._next_beat = self._changes, max(self._next_beat, now)
            return
        changed = self._changes != self._told
        beat = now >= self._next_beat
        if changed or beat:
            message = b"data: %d\n\n" % self._changes if changed else BEAT
            self._told = self._changes
            if beat:
                self._next_beat = now + self.heartbeat
            for sock, stream in list(self._streams.items()):
                if stream.event or (stream.pending and not changed):
                    continue  # merged: an unsent event makes the page fetch the newest anyway
                if not stream.pending:
                    stream.deadline = now + self.send_timeout
                stream.pending += message
                stream.event = changed
                self._flush(sock)
        for sock, stream in list(self._streams.items()):
            if stream.pending and stream.deadline <= now:
                self.dropped += 1
                log.debug("serve: an /events client did not read in time; dropped")
                self._close(sock, reset=True)

    def wakeups(self) -> list[float]:
        """When tick() must run next (monotonic): [] with no stream open."""
        if not self._streams:
            return []
        return [min([s.deadline for s in self._streams.values() if s.pending] + [self._next_beat])]

    def close_all(self) -> None:
        """End every stream: cleanly (FIN after what was sent) when nothing is left unsent."""
        for sock, stream in list(self._streams.items()):
            if not stream.pending:
                _try(sock.shutdown, socket.SHUT_WR)
            self._close(sock, reset=bool(stream.pending))

    def _flush(self, sock: socket.socket) -> None:
        stream = self._streams[sock]
        try:
            sent = sock.send(stream.pending)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the client has gone
            self._close(sock, reset=True)
            return
        stream.pending = stream.pending[sent:]
        if not stream.pending:
            stream.event = False
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if stream.pending else 0)
        try:
            if self.selector.get_key(sock).events != events:
                self.selector.modify(sock, events, self)
        except (KeyError, ValueError, OSError):
            pass  # not registered yet (adopt registers it) or closed

    def _close(self, sock: socket.socket, reset: bool) -> None:
        self._streams.pop(sock, None)
        _try(self.selector.unregister, sock)
        if reset:
            _try(sock.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def _try(func: Callable[..., object], *args: object) -> None:
    try:
        func(*args)
    except (OSError, KeyError, ValueError):
        pass
