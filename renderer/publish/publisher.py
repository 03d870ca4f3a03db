"""The daemon's publisher: passes of a Mirror (renderer.publish.mirror) in a thread of their own,
so a store that is down or slow never slows rendering or the local board.

The loop only tells it that the folder changed (`touched`, after each write of the pages); the
thread then runs one pass, which sends the newest bytes of every file changed since: ten
renders during one slow upload send the newest image once. A pass that fails is tried again
after 1 s, doubled up to RETRY_MAX (under 10 s), until the store answers; meanwhile the state
is `error` and `pending` counts what waits. The first pass reconciles (lists the prefix).
The thread runs guarded (renderer.threads): a bug in it stops the daemon with exit status 1.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from renderer.board.model import Board
from renderer.publish.client import StoreError
from renderer.publish.mirror import Mirror
from renderer.text import count
from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")

RETRY_FIRST = 1.0
RETRY_MAX = 8.0  # the store is tried at least this often while it fails
GAP = 0.2  # seconds at least from the start of a pass to the next: a loop that publishes all the time
# (renders every few ms) has its images sent in batches, not each in a pass of its own
AGAIN_AFTER = 0.5  # a pass that left work for later (a deletion a page still names) is followed this soon
STOP_FLUSH = 5.0  # at stop, how long a last pass may take


class Publisher:
    def __init__(self, board: Board, wake: Callable[[], None], died: Died | None = None,
                 make_mirror: Callable[..., Mirror] = Mirror) -> None:
        self.spec = board.publish
        self.mirror = make_mirror(board.output, board.state_dir, self.spec)
        self.wake = wake
        self._cond = threading.Condition()
        self._dirty = True
        self._reconcile = True
        self._stopping = False
        last = self.mirror.state
        self.state = "error" if last.get("state") == "error" else "ok"
        self.error: str | None = last.get("error") if isinstance(last.get("error"), str) else None
        self._told: tuple[str, str | None] = (self.state, self.error)
        self.thread = guarded_thread("publish", self._work, died)

    # -- the loop's side ------------------------------------------------------------------

    def __enter__(self) -> "Publisher":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def touched(self) -> None:
        """The output folder changed: a pass follows."""
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def summary(self) -> dict[str, Any]:
        """status.json's `publish`."""
        return {"url": self.spec.url, "state": self.state, "error": self.error, "pending": self.mirror.pending}

    def changed(self) -> bool:
        """Whether the state or its error changed since last asked (the pages must say so)."""
        now = (self.state, self.error)
        if now == self._told:
            return False
        self._told = now
        return True

    def stop(self, flush: float = STOP_FLUSH) -> None:
        """Stop the thread after a last pass of at most `flush` seconds (none while failing)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self.thread.is_alive():
            self.thread.join(flush)
        if self.thread.is_alive():
            log.warning("publish: stopped with %s not yet in %s", count(self.mirror.pending, "file"), self.spec.url)

    # -- the thread -----------------------------------------------------------------------

    def _work(self) -> None:
        retry_at: float | None = None
        failures = 0
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    ready = self._dirty and (retry_at is None or now >= retry_at)
                    if self._stopping or ready:
                        break
                    self._cond.wait(None if retry_at is None or not self._dirty else retry_at - now)
                if self._stopping and (self.state == "error" or not self._dirty):
                    break
                self._dirty = False
                reconcile = self._reconcile
                stopping = self._stopping
            started = time.monotonic()
            try:
                done = self.mirror.run(reconcile=reconcile)
            except StoreError as exc:
                self.mirror.count_pending()
                failures += 1
                retry_at = time.monotonic() + min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MAX)
                with self._cond:
                    self._dirty = True
                if self.error != str(exc) or failures == 1:
                    log.error("publish to %s failed, trying again every few seconds: %s", self.spec.url, exc)
                self._set("error", str(exc))
            else:
                if failures or reconcile:
                    log.info("publish: %s in line with %s (%d sent, %d deleted)", self.mirror.output,
                             self.spec.url, done.sent, done.deleted)
                failures, retry_at = 0, started + GAP
                self._reconcile = False
                if done.again:
                    retry_at = max(retry_at, time.monotonic() + AGAIN_AFTER)
                    with self._cond:
                        self._dirty = True
                self._set("ok", None)
            if stopping:
                break
        self.mirror.close()

    def _set(self, state: str, error: str | None) -> None:
        if (state, error) != (self.state, self.error):
            self.state, self.error = state, error
            self.mirror.state = {"state": state, "error": error}
            self.wake()
