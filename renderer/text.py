"""Bounding text that comes from outside plotboard (exception messages, old bookkeeping) before
it reaches state.json, status.json, the page, the log or `plotboard status`; and counting words."""

from __future__ import annotations

import re

MAX_ERROR = 2000  # characters of a render's error text, marker included
MAX_TRACEBACK = 20000  # characters of a failed render's traceback (logged with -v)
MAX_STATUS_ERROR = 200  # characters of each error in `plotboard status`'s line
MAX_STATUS_LINE = 2000  # characters of `plotboard status`'s whole line

# Everything that can end or break a line, or move the cursor: C0 controls (\n, \r, \t, \v, \f,
# ESC…), DEL, NEL and the Unicode line and paragraph separators (str.splitlines' boundaries).
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def cut(text: str, limit: int = MAX_ERROR) -> str:
    """text, or its start and a marker saying how long it was, at most `limit` characters."""
    if len(text) <= limit:
        return text
    marker = f" … [cut: {len(text)} characters in all]"
    return text[:max(0, limit - len(marker))] + marker[:limit]


def one_line(text: str) -> str:
    """text with every run of line breaks and control characters made one space."""
    return _BREAKS.sub(" ", text).strip()


def count(n: int, word: str) -> str:
    """'1 chart', '2 charts', '0 charts'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
