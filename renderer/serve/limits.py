"""How much of the process the built-in server may use: connections, threads, deadlines and
/events streams (renderer.serve.server, renderer.serve.events)."""

from __future__ import annotations

import resource
from dataclasses import dataclass


def quarter_of_files(most: int) -> int:
    """A quarter of the soft RLIMIT_NOFILE, between 8 and `most`: the rest is for the renders."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(8, min(most, soft // 4))


def default_connection_cap() -> int:
    """Connections at most: a quarter of the descriptors, 512 at most (two each at most)."""
    return quarter_of_files(512)


def default_stream_cap() -> int:
    """/events streams at most: a quarter of the descriptors, 1024 at most (one each)."""
    return quarter_of_files(1024)


@dataclass(frozen=True)
class Limits:
    """How much of the process one server may use; None: default_connection_cap()."""

    connections: int | None = None
    threads: int = 4
    header_timeout: float = 10.0
    send_timeout: float = 20.0
    streams: int | None = None  # /events streams at most; None: default_stream_cap()
    heartbeat: float = 30.0  # seconds between an /events stream's comment lines at most
