"""The daemon's side of a `plotboard build` handed to it (renderer.daemon.control): which charts each
request waits for, and its answer once their renders are published and the pages written."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, ContextManager

from renderer.daemon.control import BuildRequest, ControlServer

log = logging.getLogger("plotboard")


class BuildRequests:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.server: ControlServer | None = None
        self.open: list[BuildRequest] = []

    def listen(self, root: Path, wake: Callable[[], None]) -> ContextManager:
        """Start taking requests; a context manager that stops it."""
        try:
            self.server = ControlServer(root, wake)
        except OSError as exc:
            log.warning("cannot take builds' requests (%s); a build will exit, saying this daemon owns the board",
                        exc.strerror or exc)
            return nullcontext()
        return self.server

    def take(self, charts: Callable[[], list[str]], want: Callable[[str, bool], bool]) -> bool:
        """Take new requests; `charts()` names the board's charts, `want(name, force)` asks for a
        render and says whether it did. Returns True when a request waits only for the pages."""
        if self.server is None:
            return False
        pages_only = False
        for request in self.server.take():
            names = charts()
            request.at = self.clock()
            unknown = sorted(set(request.only or ()) - set(names))
            if unknown:
                request.answer(error=f"--only: no chart named {', '.join(unknown)}")
                continue
            for name in names:
                if request.only is None or name in request.only:
                    if want(name, request.force):
                        request.pending.add(name)
                    else:
                        request.up_to_date.append(name)
            log.info("build requested: %d to render, %d up to date", len(request.pending), len(request.up_to_date))
            self.open.append(request)
            pages_only |= not request.pending
        return pages_only

    def published(self, name: str, ok: bool, dispatched_at: float) -> None:
        for request in self.open:
            request.published(name, ok, dispatched_at)

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
