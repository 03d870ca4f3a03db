"""What a long pass tells a person: a progress line for `build` in a terminal, and the daemon's
summary of its renders instead of a line per render. Under cron or in a pipe, `build` keeps
writing plain log lines and no progress line."""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, TextIO

log = logging.getLogger("plotboard")

REDRAW_EVERY = 0.1  # seconds between progress redraws
SUMMARY_EVERY = 10.0  # the daemon's summary of renders: at most one line this often


class Progress(logging.Filter):
    """`rendering 1200/3000, 1 failed, ~45 s left`, redrawn in place on a terminal.

    Also a filter for the log handler that writes to the same terminal: a log line (a failure)
    first clears the progress line, so the two never share a line.
    """

    def __init__(self, total: int, stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.total, self.stream, self.clock = total, stream, clock
        self.done = self.failed = 0
        self.started = clock()
        self._drawn_at: float | None = None
        self._shown = False

    @staticmethod
    def wanted(stream: TextIO = sys.stderr) -> bool:
        """A terminal is watching (not cron, not a pipe or a file)."""
        return stream.isatty()

    def text(self) -> str:
        line = f"rendering {self.done}/{self.total}"
        if self.failed:
            line += f", {self.failed} failed"
        elapsed = self.clock() - self.started
        if 0 < self.done < self.total and elapsed > 0:
            left = elapsed / self.done * (self.total - self.done)
            line += f", ~{left:.0f} s left"
        return line

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = self.clock()
        if self._drawn_at is None or now - self._drawn_at >= REDRAW_EVERY or self.done == self.total:
            self._drawn_at = now
            self.stream.write("\r" + self.text() + "\033[K")
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.clear()
        return True


class RenderSummary:
    """The daemon's renders since its last summary line, logged at most every SUMMARY_EVERY s."""

    def __init__(self, every: float = SUMMARY_EVERY) -> None:
        self.every = every
        self.rendered = self.changed = self.failed = 0
        self.since: float | None = None
        self.logged_at: float | None = None

    def add(self, now: float, ok: bool, changed: bool) -> None:
        if self.since is None:
            self.since = now
        if ok:
            self.rendered += 1
            self.changed += changed
        else:
            self.failed += 1

    def line(self, now: float, force: bool = False) -> str | None:
        """The summary to log now, if one is due (`force`: at shutdown); resets the counts."""
        if self.since is None:
            return None
        if not force and self.logged_at is not None and now - self.logged_at < self.every:
            return None
        text = (f"rendered {self.rendered} chart{'s' if self.rendered != 1 else ''} "
                f"({self.changed} changed), {self.failed} failed in the last {now - self.since:.1f} s")
        self.rendered = self.changed = self.failed = 0
        self.since, self.logged_at = None, now
        return text
