"""How a `plotboard build` has the running daemon do its work, instead of waiting for it.

The daemon listens on an abstract unix socket named for the board file's folder (device and
inode), so deleting `.plotboard/` cannot take it away, and only processes of the same user
(or root) are heard. A build sends one JSON line, `{"force": false, "only": null}`; the daemon
renders what the build would have rendered, writes the pages, and answers with one JSON line
`{"rendered": [...], "failed": [...], "up_to_date": [...], "pid": N}` (or `{"error": "..."}`).
The accepting thread only records requests and wakes the loop; the loop does the work, and
keeps each request's account (renderer.daemon.builds).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")

MAX_REQUEST = 64 * 1024
READ_TIMEOUT = 5.0  # a client that connects and says nothing is dropped after this


def address(root: Path) -> str:
    st = os.stat(root)
    return f"\0plotboard-{st.st_dev:x}-{st.st_ino:x}"


@dataclass(eq=False)
class Request:
    """A build's request as it came in: what it asks for, and the connection to answer on."""

    conn: socket.socket
    force: bool
    only: list[str] | None

    def answer(self, **message: object) -> None:
        """Send the result (or an error) and hang up; a client that went away is no matter."""
        try:
            self.conn.sendall(json.dumps(message, allow_nan=False).encode() + b"\n")
        except OSError:
            pass
        finally:
            self.conn.close()


def parse_request(line: bytes) -> tuple[bool, list[str] | None]:
    """(force, only) from a request line; ValueError when it is not of that shape."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    force, only = data.get("force", False), data.get("only")
    if not isinstance(force, bool) or not (only is None or (isinstance(only, list)
                                                             and all(isinstance(n, str) for n in only))):
        raise ValueError("bad field types")
    return force, only


class ControlServer:
    """Listens for build requests while the daemon runs (a context manager).

    If the accepting thread dies (a bug), `on_thread_death` is told its name, and the socket is
    closed, so that a build is refused at once instead of waiting for an answer."""

    def __init__(self, root: Path, wake: Callable[[], None], on_thread_death: Died | None = None) -> None:
        self.wake = wake
        self._requests: "queue.SimpleQueue[Request]" = queue.SimpleQueue()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.bind(address(root))
            self._sock.listen(16)
        except OSError:
            self._sock.close()
            raise
        self._thread = guarded_thread("plotboard-control", self._accept, on_thread_death,
                                      cleanup=lambda exc: self._sock.close())
        self._thread.start()

    def __enter__(self) -> "ControlServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while self._serve_one():
            pass

    def _serve_one(self) -> bool:
        """Wait for a client and take its request; False once the socket is closed."""
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return False
        try:
            self._take_request(conn)
        except Exception:  # noqa: BLE001 - one bad client must not end the thread
            log.exception("control: cannot read a request")
            conn.close()
        return True

    def _take_request(self, conn: socket.socket) -> None:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid not in (0, os.getuid()):
            conn.close()
            return
        conn.settimeout(READ_TIMEOUT)
        line = b""
        try:
            while not line.endswith(b"\n") and len(line) < MAX_REQUEST:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                line += chunk
            force, only = parse_request(line)
        except (OSError, ValueError) as exc:
            Request(conn, False, None).answer(error=f"bad request: {exc}")
            return
        conn.settimeout(None)
        self._requests.put(Request(conn, force, only))
        self.wake()

    def take(self) -> list[Request]:
        """The requests that came in since the last call."""
        got = []
        while True:
            try:
                got.append(self._requests.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)
        for request in self.take():
            request.answer(error="plotboard run is stopping")


def ask_daemon(root: Path, force: bool, only: list[str] | None, timeout: float) -> dict:
    """Send a build request to the daemon of the board in `root`; its answer.

    Raises OSError when no daemon listens or it does not answer within `timeout` seconds.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect(address(root))
        sock.sendall(json.dumps({"force": force, "only": only}, allow_nan=False).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    try:
        message = json.loads(answer)
    except ValueError:
        raise OSError("the daemon hung up without an answer") from None
    if not isinstance(message, dict):
        raise OSError("the daemon's answer is not an object")
    return message
