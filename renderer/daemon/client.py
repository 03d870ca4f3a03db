"""A build's side of the build socket (the daemon's is renderer.daemon.control): connect, check
that the daemon of the board answers, send the request, follow its progress to the answer."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from renderer.daemon.control import address, peer

FIRST_ANSWER = 60.0  # how long a build waits for the daemon to take its request


class NotTheDaemon(OSError):
    """What answers on the board's socket is not the daemon that holds the board."""


class StillRendering(OSError):
    """The daemon took the request and is still rendering."""

    def __init__(self, left: int, waited: float) -> None:
        super().__init__(f"it took this build's request and is still rendering "
                         f"({left} chart(s) left after {waited:.0f}s); they will be published when done")


def _connect(sock: socket.socket, name: str, deadline: float) -> None:
    """Connect; while the daemon's backlog is full (EAGAIN: a unix socket does not queue a
    connecting client that does not block), try again until `deadline`."""
    pause = 0.005
    while True:
        try:
            sock.connect(name)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


class Abandoned(OSError):
    """The daemon took the request, then hung up without an answer."""


def ask_daemon(board_path: Path, force: bool, only: list[str] | None, pid: int | None,
               patience: float, first: float = FIRST_ANSWER) -> dict:
    """Send a build request to the daemon of the board file `board_path` (process `pid`, as the
    board's lock names it); its answer.

    The daemon must take the request within `first` seconds, and then report progress at least
    every `patience` seconds (a render in flight ends within render_timeout). Raises NotTheDaemon
    when another process answers on the socket, StillRendering when the daemon took the request
    but went quiet, OSError when no daemon listens or it does not take the request."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(first)
        _connect(sock, address(board_path), time.monotonic() + first)
        their_pid, uid = peer(sock)
        if uid not in (0, os.geteuid()) or (pid is not None and their_pid != pid):
            raise NotTheDaemon(f"the build socket is held by process {their_pid} of uid {uid}, "
                               f"not by the daemon{f' (pid {pid})' if pid else ''}: not trusting it")
        sock.sendall(json.dumps({"board": str(board_path), "force": force, "only": only},
                                allow_nan=False).encode() + b"\n")
        started, left, buffer = time.monotonic(), None, b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if left is None:
                    raise OSError(f"it did not take the request within {first:.0f}s") from None
                raise StillRendering(left, time.monotonic() - started) from None
            if not chunk:
                if left is not None:
                    raise Abandoned("it took this build's request, then hung up before answering (did it stop?)")
                raise OSError("the daemon hung up without an answer")
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    raise OSError("the daemon's answer is not JSON") from None
                if not isinstance(message, dict):
                    raise OSError("the daemon's answer is not an object")
                if "taken" in message or "working" in message:
                    value = message.get("taken", message.get("working"))
                    left = value if isinstance(value, int) else 0
                    sock.settimeout(patience)
                    continue
                return message
