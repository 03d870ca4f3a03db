"""The baseline of bench/serve_load.py: renderer/serve.py as it was at 58737fa, unchanged below.

A preview web server for the output folder: stdlib, threaded, bound to 127.0.0.1.

It sends the same caching headers as deploy/nginx.conf: `no-cache` for the page and
status.json, long-lived caching for versioned URLs (`NAME.png?v=HASH`). Validation uses a
strong ETag built from the file's inode, mtime in nanoseconds and size, never
If-Modified-Since alone: that has one-second precision, and an image replaced twice within
a second would get a stale 304.
"""

from __future__ import annotations

import email.utils
import logging
import os
import posixpath
import threading
import urllib.parse
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

from renderer.errors import PlotboardError

log = logging.getLogger("plotboard")

HOST = "127.0.0.1"
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
ALWAYS_FRESH = {"index.html", "status.json"}


class Handler(SimpleHTTPRequestHandler):
    """Serves files of one folder (no directory listings) with ETag and Cache-Control."""

    server_version = "plotboard"
    # HTTP/1.0: one request per connection, so no idle keep-alive thread outlives a page load.
    protocol_version = "HTTP/1.0"

    def send_head(self) -> BinaryIO | None:
        parts = urllib.parse.urlsplit(self.path)
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            if not parts.path.endswith("/"):
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", urllib.parse.urlunsplit(parts._replace(path=parts.path + "/")))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            path = os.path.join(path, "index.html")
        name = posixpath.basename(path)
        if any(seg.startswith(".") for seg in urllib.parse.unquote(parts.path).split("/")):
            # Hidden names: temporary files of a publish in progress are never served.
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        try:
            f = open(path, "rb")  # a folder or "file.png/" raises too
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
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
            if etag in _etags(self.headers.get("If-None-Match", "")):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.send_header("Cache-Control", cache)
                self.end_headers()
                f.close()
                return None
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", cache)
            self.end_headers()
            return f
        except Exception:
            f.close()
            raise

    def log_message(self, format: str, *args: object) -> None:
        log.debug("serve: %s %s", self.address_string(), format % args)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class BoardServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer running in its own daemon thread; shutdown() stops and joins it."""

    daemon_threads = True
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port actually bound (useful when started with port 0)."""
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def handle_error(self, request, client_address) -> None:
        # A browser that goes away mid-response is normal, not worth a traceback on stderr.
        log.debug("serve: error while answering %s", client_address, exc_info=True)

    def shutdown(self) -> None:
        """Stop serving, close the socket and join the serving thread."""
        super().shutdown()
        self.server_close()
        self.thread.join()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def start_server(folder: Path, port: int) -> BoardServer:
    """Serve folder on 127.0.0.1:port (0: any free port) from a daemon thread."""
    handler = partial(Handler, directory=os.fspath(folder))
    server = BoardServer((HOST, port), handler)
    server.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                     name=f"plotboard-serve-{server.port}", daemon=True)
    server.thread.start()
    return server


def serve_board(folder: Path, port: int) -> BoardServer:
    """start_server for the daemon's --serve: a port that cannot be had is a user error."""
    try:
        server = start_server(folder, port)
    except OSError as exc:
        raise PlotboardError(f"cannot serve on {HOST}:{port}: {exc.strerror or exc}") from None
    log.info("serving %s on %s", folder, server.url)
    return server
