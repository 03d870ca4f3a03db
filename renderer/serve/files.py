"""What a request to the built-in server may read: regular files below the output folder,
opened segment by segment with O_NOFOLLOW (no symlink below the folder is ever followed), with
strong ETags and the caching headers deploy/nginx.conf sends (renderer.serve.server runs the server)."""

from __future__ import annotations

import email.utils
import io
import logging
import os
import socket
import stat
import threading
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler
from typing import Any, BinaryIO, Callable

log = logging.getLogger("plotboard")

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
ALWAYS_FRESH = {"index.html", "status.json"}
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never blocks
Route = Callable[[], tuple[str, bytes]]  # a path answered by code: () -> (Content-Type, body)


@dataclass(frozen=True)
class Answer:
    """What a query route answers: a status, headers, and a body (bytes, or the file at `file`,
    sent from the file without passing through Python)."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    file: str | None = None


# A path prefix ending in "/" answered by code that may answer later, from any thread, and holds
# no server thread meanwhile: route(path, query, headers, reply); reply(Answer) exactly once.
QueryRoute = Callable[[str, str, Any, Callable[[Answer], None]], None]


class Later:
    """An answer a query route gives later: `then` runs its callback once both the handler has
    returned and the answer is written (whichever comes last)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._then: Callable[[], None] | None = None

    def done(self) -> None:
        with self._lock:
            self._done, then = True, self._then
        if then is not None:
            then()

    def then(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._done:
                self._then = callback
                return
        callback()


class Output:
    """The handler's wfile: collects the answer (headers, a small body, or a file to send from)
    for the server's loop, which sends it without blocking, by `deadline` (monotonic) at the latest."""

    def __init__(self, deadline: float) -> None:
        self.deadline, self.buffer, self.closed = deadline, bytearray(), False
        self.sent = 0  # bytes of buffer sent
        self.body: BinaryIO | None = None  # a file sent after the buffer, `left` bytes of it
        self.offset = self.left = 0
        self.later: Later | None = None  # a query route answers later (Handler._defer)

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def attach(self, body: BinaryIO, length: int) -> None:
        self.body, self.left = body, length

    def send(self, sock: socket.socket) -> bool:
        """Send what the (non-blocking) socket takes now: True when all is sent. OSError when
        the client has gone."""
        try:
            while self.sent < len(self.buffer):
                self.sent += sock.send(memoryview(self.buffer)[self.sent:])
            if self.body is not None and self.left > 0:  # one call a turn: others' turns come between
                n = os.sendfile(sock.fileno(), self.body.fileno(), self.offset, min(self.left, 1 << 20))
                self.offset, self.left = self.offset + n, self.left - n
                if n == 0:  # the file shrank after its length was sent: the client sees a short body
                    self.left = 0
        except BlockingIOError:
            return False
        return self.left == 0

    def close(self) -> None:
        self.closed = True  # the socket is the server's to close; the body is closed by discard()

    def discard(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None


class Handler(SimpleHTTPRequestHandler):
    """Answers one complete request head (read by the loop) from one folder: no directory
    listings, no hidden names, no symlinks; ETag and Cache-Control."""

    server_version = "plotboard"
    # HTTP/1.0: one request per connection, so no idle keep-alive connection holds a slot.
    protocol_version = "HTTP/1.0"
    server: Any  # renderer.serve.server.BoardServer: its `limits`

    def setup(self) -> None:
        self.connection, head, self.wfile = self.request
        self.rfile = io.BytesIO(head)

    def finish(self) -> None:
        pass  # the server's loop sends the answer collected in wfile

    def do_GET(self) -> None:
        f = self.send_head()
        if f:
            self.wfile.attach(f, self.length)

    def send_head(self) -> BinaryIO | None:
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path, errors="surrogateescape")
        if "\x00" in path or not path.startswith("/"):
            self.send_error(HTTPStatus.BAD_REQUEST)
            return None
        route = getattr(self.server, "routes", {}).get(path)
        if route is not None and not path.endswith("/"):  # "/render/" itself is its query route's
            return self._answer(route)
        prefix = path[:path.find("/", 1) + 1]
        if prefix and prefix in getattr(self.server, "routes", {}):
            return self._defer(self.server.routes[prefix], path, parts.query)
        segments = [seg for seg in path.split("/") if seg]
        if any(seg.startswith(".") for seg in segments):
            # Hidden names: temporary files of a publish in progress are never served ("..", too).
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        try:
            f, name = self._open(segments, path.endswith("/"))
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        if f is None:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", urllib.parse.urlunsplit(parts._replace(path=parts.path + "/")))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        try:
            st = os.fstat(f.fileno())
            etag = f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'
            if name in ALWAYS_FRESH:
                cache = NO_CACHE
            elif "v" in urllib.parse.parse_qs(parts.query):
                cache = IMMUTABLE
            else:
                cache = NO_CACHE
            if _matches(self.headers.get("If-None-Match"), etag):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.send_header("Cache-Control", cache)
                self.end_headers()
                f.close()
                return None
            self.length = st.st_size
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", self.guess_type(name))
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", cache)
            self.end_headers()
            return f
        except Exception:
            f.close()
            raise

    def _answer(self, route: Route) -> None:
        """A route's answer, never cached; 500 (logged) when its code fails."""
        try:
            content_type, body = route()
        except Exception:  # noqa: BLE001 - a bug in a route costs its own answer only
            log.exception("serve: error while answering %s", self.path)
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR)
            return None
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return None

    def _defer(self, route: QueryRoute, path: str, query: str) -> None:
        """Hand the request to a query route, which replies now or later (the server sends the
        answer once `later` is done); a route that fails answers 500, logged."""
        later = self.wfile.later = Later()
        replied = threading.Lock()

        def reply(answer: Answer) -> None:
            if not replied.acquire(blocking=False):
                return  # answered already
            try:
                self._reply(answer)
            except Exception:  # noqa: BLE001 - a file gone meanwhile: the client gets what was written
                log.debug("serve: error while answering %s", path, exc_info=True)
            later.done()

        try:
            route(path, query, self.headers, reply)
        except Exception:  # noqa: BLE001 - a bug in a route costs its own answer only
            log.exception("serve: error while answering %s", self.path)
            reply(Answer(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n"))
        return None

    def _reply(self, answer: Answer) -> None:
        body, length = answer.body, len(answer.body)
        f = None
        if answer.file is not None:
            f = open(answer.file, "rb")
            length = os.fstat(f.fileno()).st_size
        self.send_response(answer.status)
        if answer.status != HTTPStatus.NO_CONTENT:  # a 204 has no body to describe
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(length))
        for key, value in answer.headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            if f is not None:
                f.close()
        elif f is not None:
            self.wfile.attach(f, length)
        else:
            self.wfile.write(body)

    def _open(self, segments: list[str], trailing_slash: bool) -> tuple[BinaryIO | None, str]:
        """The regular file the segments name, opened without following any symlink below
        the folder; a folder gives its index.html when asked with a trailing slash, else
        (None, "") for a redirect. OSError when there is nothing to serve."""
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for seg in segments[:-1]:
                fd, parent = os.open(seg, DIR_FLAGS, dir_fd=fd), fd
                os.close(parent)
            name = segments[-1] if segments else ""
            if name:
                fd, parent = os.open(name, FILE_FLAGS, dir_fd=fd), fd
                os.close(parent)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                if not trailing_slash:
                    return None, ""
                name = "index.html"
                fd, parent = os.open(name, FILE_FLAGS, dir_fd=fd), fd
                os.close(parent)
            elif trailing_slash:
                raise NotADirectoryError(name)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(name)  # a folder, FIFO or device: nothing to serve
            f = os.fdopen(fd, "rb")
            fd = -1
            return f, name
        finally:
            if fd >= 0:
                os.close(fd)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("serve: %s %s", self.address_string(), format % args)


def _matches(header: str | None, etag: str) -> bool:
    """If-None-Match: `*` matches any existing file; else weak comparison of the listed tags."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return etag in {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
