"""Zoom on demand, the daemon's side: `GET /render/NAME.png?...` (renderer.serve.zoom checks it)
answered from the disk cache (renderer.daemon.zoom_cache) or drawn by the daemon's own workers.

`GET /render/` itself answers 204 No Content at once: the page's probe for a daemon behind it
(a static host answers 404). The server's threads only queue a request and wake the loop;
everything else happens on the loop's thread, in `step`, after the scheduled renders were
dispatched:

- identical requests (same cache key) share one render (single flight);
- an on-demand render starts only on a worker no scheduled render has taken (`idle`), so a
  scheduled render waits at most for the one on-demand render a worker is drawing;
- at most QUEUE_PER_WORKER distinct renders a worker wait, and at most ASK_LIMIT requests are queued for the
  loop: beyond them the answer is 503 with Retry-After, so memory never grows without bound;
- a failed render answers 500 with its one-line error and touches nothing else: the published
  image, status.json and the chart's record are the scheduled renders' alone.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable

from renderer.board.model import Board
from renderer.daemon.zoom_cache import ZoomCache, cache_key
from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput
from renderer.serve.files import Answer
from renderer.serve.zoom import Ask, Refused, parse
from renderer.store.fingerprints import expand_inputs, fingerprint
from renderer.store.workspace import make_job
from renderer.text import one_line

log = logging.getLogger("plotboard")

QUEUE_PER_WORKER = 8  # distinct on-demand renders waiting for a worker, per worker of the board
ASK_LIMIT = 512  # requests handed to the loop and not yet looked at
RETRY_AFTER = "2"  # seconds, in a 503's Retry-After
ACCEL_HEADER = "X-Plotboard-Zoom-Files"  # set by nginx: the internal location over the cache folder
Reply = Callable[[Answer], None]


def text(status: int, reason: str, *headers: tuple[str, str]) -> Answer:
    return Answer(status, (one_line(reason) + "\n").encode(), headers=(("Cache-Control", "no-store"), *headers))


@dataclass
class Wanted:
    """One on-demand render and the requests waiting for it."""

    job: RenderJob
    replies: list[tuple[Reply, str | None]] = field(default_factory=list)  # (reply, X-Accel location)


class Zoom:
    """The on-demand renders of one daemon."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.cache: ZoomCache | None = None
        self.waiting: OrderedDict[str, Wanted] = OrderedDict()  # not yet started, oldest first
        self.rendering: dict[str, Wanted] = {}
        self.renders = 0  # started since the daemon started
        self._asks: queue.SimpleQueue[tuple[str, str, str | None, Reply]] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._asked = 0  # in _asks
        self._closed = False

    @property
    def routes(self) -> dict[str, Any]:
        return {"/render/": self.route}

    # -- the server's threads ---------------------------------------------------------------

    def route(self, path: str, query: str, headers: Any, reply: Reply) -> None:
        if path == "/render/":  # the page's probe (site/static/zoom.js): a daemon draws here
            reply(Answer(HTTPStatus.NO_CONTENT, headers=(("Cache-Control", "no-store"),)))
            return
        with self._lock:  # queued under the lock: close() then either finds it queued or refuses it
            full = self._closed or self._asked >= ASK_LIMIT
            if not full:
                self._asked += 1
                self._asks.put((path, query, headers.get(ACCEL_HEADER), reply))
        if full:
            reply(text(HTTPStatus.SERVICE_UNAVAILABLE, "too many on-demand renders waiting; try again",
                       ("Retry-After", RETRY_AFTER)))
            return
        self.wake()

    # -- the loop's thread ------------------------------------------------------------------

    def step(self, board: Board, executor: Any, idle: int) -> None:
        """Answer what came, and start on-demand renders on the `idle` workers (those no
        scheduled render has taken) not already drawing one."""
        if self.cache is None or self.cache.folder.parent != board.state_dir:
            self.cache = ZoomCache(board.state_dir, board.zoom_cache)
        self.cache.resize(board.zoom_cache)
        self._take_results()
        self._take_asks(board)
        while self.waiting and idle - len(self.rendering) > 0 and executor is not None:
            key, wanted = self.waiting.popitem(last=False)
            self.rendering[key] = wanted
            self.renders += 1
            try:
                future = executor.submit(wanted.job)
            except Exception as exc:  # noqa: BLE001 - e.g. a remote cluster that went away
                future = Future()
                future.set_result(RenderFailure(wanted.job.name, f"{type(exc).__name__}: {exc}",
                                                kind=FailureKind.UNAVAILABLE))
            future.add_done_callback(lambda f, k=key: self._finished(k, f))

    def _finished(self, key: str, future: Future) -> None:
        self._results.put((key, future))  # on the executor's thread: record and wake only
        self.wake()

    def _take_asks(self, board: Board) -> None:
        seen: dict[str, tuple] = {}  # a chart's inputs and fingerprint, taken once for the requests that came together
        while True:
            try:
                path, query, accel, reply = self._asks.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                self._asked -= 1
            try:
                ask = parse(board, path, query)
            except Refused as exc:
                reply(text(exc.status, str(exc)))
                continue
            if ask.chart.name not in seen:
                inputs = expand_inputs(ask.chart)
                seen[ask.chart.name] = (inputs, fingerprint(board, ask.chart, inputs))
            self._ask(board, ask, *seen[ask.chart.name], accel, reply)

    def _ask(self, board: Board, ask: Ask, inputs: list[str], current: str, accel: str | None, reply: Reply) -> None:
        chart = ask.chart
        key = cache_key(chart.name, current, ask.window, ask.end, ask.width, ask.scale)
        wanted = self.waiting.get(key) or self.rendering.get(key)
        if wanted is None:
            path = self.cache.get(key)
            if path is not None:
                reply(_image(key, path, accel, "hit"))
                return
            if len(self.waiting) >= QUEUE_PER_WORKER * board.workers:
                reply(text(HTTPStatus.SERVICE_UNAVAILABLE, "too many on-demand renders waiting; try again",
                           ("Retry-After", RETRY_AFTER)))
                return
            job = dataclasses.replace(
                make_job(board, chart, inputs), size=(ask.width / chart.dpi, ask.height / chart.dpi),
                hidpi=False, formats=("png",), aliases=(), window=ask.window, window_name="custom", end=ask.end,
                scale=ask.scale)
            wanted = self.waiting[key] = Wanted(job)
        wanted.replies.append((reply, accel))

    def _take_results(self) -> None:
        while True:
            try:
                key, future = self._results.get_nowait()
            except queue.Empty:
                return
            wanted = self.rendering.pop(key, None)
            if wanted is None:
                continue
            outcome: RenderOutput | RenderFailure = future.result()
            if isinstance(outcome, RenderFailure):
                status = (HTTPStatus.SERVICE_UNAVAILABLE if outcome.kind is FailureKind.CANCELLED
                          else HTTPStatus.INTERNAL_SERVER_ERROR)
                log.warning("on-demand render of %s failed: %s", outcome.name, one_line(outcome.error))
                for reply, _ in wanted.replies:
                    reply(text(status, outcome.error))
                continue
            data = outcome.files[f"{outcome.name}.png"]
            path = self.cache.put(key, data)
            for reply, accel in wanted.replies:
                if path is None:  # the cache could not keep it: the bytes themselves
                    reply(Answer(HTTPStatus.OK, data, "image/png", (("Cache-Control", "no-cache"),)))
                else:
                    reply(_image(key, path, accel, "miss"))

    def close(self) -> None:
        """The daemon stops: every request still waiting is answered 503; the renders in flight
        stay listed in `rendering` (the daemon does not wait for them)."""
        with self._lock:
            self._closed = True
        stopped = text(HTTPStatus.SERVICE_UNAVAILABLE, "plotboard run is stopping", ("Retry-After", RETRY_AFTER))
        for wanted in [*self.waiting.values(), *self.rendering.values()]:
            for reply, _ in wanted.replies:
                reply(stopped)
            wanted.replies.clear()
        self.waiting.clear()
        while True:
            try:
                reply = self._asks.get_nowait()[3]
            except queue.Empty:
                break
            reply(stopped)


def _image(key: str, path: Any, accel: str | None, how: str) -> Answer:
    """A cached image: sent from its file, or by nginx when it asked (X-Accel-Redirect to its
    internal location over the cache folder)."""
    headers = (("Cache-Control", "no-cache"), ("X-Plotboard-Zoom", how))
    if accel and accel.startswith("/") and accel.endswith("/") and accel.isascii() and accel.isprintable():
        return Answer(HTTPStatus.OK, b"", "image/png", (*headers, ("X-Accel-Redirect", f"{accel}{key}.png")))
    return Answer(HTTPStatus.OK, content_type="image/png", headers=headers, file=str(path))
