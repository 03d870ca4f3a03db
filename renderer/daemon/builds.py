"""The daemon's account of each `plotboard build` handed to it (the socket is renderer.daemon.control):
which charts a request waits for, and its answer once their renders are published and the pages
written."""

from __future__ import annotations

import errno
import logging
import os
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

from renderer.daemon.control import ControlServer, Request
from renderer.threads import Died

log = logging.getLogger("plotboard")


@dataclass(eq=False)
class BuildRequest:
    """A build's request, and what the daemon has done about it so far."""

    request: Request
    at: float = 0.0  # when the loop took it: renders dispatched since then count
    pending: set[str] = field(default_factory=set)
    rendered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)

    def published(self, name: str, ok: bool, dispatched_at: float) -> None:
        """A render of `name` was published; it counts if it started after the request."""
        if name in self.pending and dispatched_at >= self.at:
            self.pending.discard(name)
            (self.rendered if ok else self.failed).append(name)

    def answer(self, **message: object) -> None:
        self.request.answer(**message)

    def result(self) -> dict:
        return {"rendered": self.rendered, "failed": self.failed, "up_to_date": self.up_to_date,
                "pid": os.getpid()}


class BuildRequests:
    """The builds' requests the daemon works on, answered once done."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.server: ControlServer | None = None
        self.board_path: Path | None = None
        self.open: list[BuildRequest] = []
        self.problem: str | None = None  # why this daemon does not hold the build socket
        self._listen: tuple | None = None  # listen()'s arguments, for retry()

    def listen(self, board_path: Path, wake: Callable[[], None], on_thread_death: Died | None = None) -> ContextManager:
        """Start taking requests for the board file `board_path`; a context manager that stops it.
        `on_thread_death` is told if the serving thread dies (renderer.threads). When the socket's
        name is taken, `problems()` says so until a later `retry()` gets it."""
        self.board_path = board_path
        self._listen = (board_path, wake, on_thread_death)
        self.retry()
        return closing(self)

    def retry(self) -> None:
        """Try to take the build socket again if this daemon does not hold it."""
        if self.server is not None or self._listen is None:
            return
        try:
            self.server = ControlServer(*self._listen)
        except OSError as exc:
            why = ("another process holds its name" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
            if self.problem is None:
                log.error("cannot take builds' requests on the build socket (%s); a build will exit 1, saying so",
                          why)
            self.problem = (f"cannot take builds' requests on the build socket ({why}): a plotboard build exits 1 "
                            "until this daemon gets it (it tries again every few seconds)")
            return
        if self.problem is not None:
            log.info("took the build socket: builds are handed to this daemon again")
        self.problem = None

    def problems(self) -> list[dict[str, str]]:
        """The board-level problems of the build socket, as status.json lists them."""
        return [] if self.problem is None else [{"what": "socket", "message": self.problem}]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def take(self, charts: Callable[[], dict[str, str | None]], want: Callable[[str, bool], bool]) -> bool:
        """Take new requests; `charts()` maps the board's charts to the chart they are a later
        window of (or None), `want(name, force)` asks for a render and says whether it did. Returns
        True when a request waits only for the pages."""
        if self.server is None:
            return False
        pages_only = False
        for incoming in self.server.take():
            names = charts()
            request = BuildRequest(incoming, at=self.clock())
            if incoming.board is not None and incoming.board != str(self.board_path):
                request.answer(error=f"this daemon keeps {self.board_path}, not {incoming.board}")
                continue
            only = incoming.only
            unknown = sorted(set(only or ()) - set(names))
            if unknown:
                request.answer(error=f"--only: no chart named {', '.join(unknown)}")
                continue
            for name, window_of in names.items():
                if only is None or name in only or window_of in only:
                    if want(name, incoming.force):
                        request.pending.add(name)
                    else:
                        request.up_to_date.append(name)
            log.info("build requested: %d to render, %d up to date", len(request.pending), len(request.up_to_date))
            request.request.send(taken=len(request.pending))
            self.open.append(request)
            pages_only |= not request.pending
        return pages_only

    def published(self, name: str, ok: bool, dispatched_at: float) -> None:
        for request in self.open:
            request.published(name, ok, dispatched_at)
            request.request.send(working=len(request.pending))  # the build waits while renders end

    def removed(self, name: str) -> None:
        """A reload removed the chart: no request waits for it."""
        for request in self.open:
            request.pending.discard(name)

    def answer_done(self) -> None:
        """The pages were written: answer the requests whose renders are all published."""
        for request in [r for r in self.open if not r.pending]:
            self.open.remove(request)
            request.answer(**request.result())

    def answer_all(self, error: str) -> None:
        self.answer_done()
        for request in self.open:
            request.answer(error=error)
        self.open.clear()
