"""Bounding text that comes from outside plotboard (exception messages, old bookkeeping) before
it reaches state.json, status.json, the page, the log or `plotboard status`; counting words; and
sizes and times as people read them."""

from __future__ import annotations

import re
from datetime import datetime, timezone

MAX_ERROR = 2000  # characters of a render's error text, marker included
MAX_TRACEBACK = 20000  # characters of a failed render's traceback (logged with -v)
MAX_STATUS_ERROR = 200  # characters of each error in `plotboard status`'s line
MAX_STATUS_LINE = 2000  # characters of `plotboard status`'s whole line

# Everything that can end or break a line, or move the cursor: C0 controls (\n, \r, \t, \v, \f,
# ESC…), DEL, NEL and the Unicode line and paragraph separators (str.splitlines' boundaries).
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
# Lone surrogates: how Python hands over the bytes of a file name that is not UTF-8 (os.fsdecode's
# surrogate escapes). They cannot be encoded as UTF-8: one reaching a page crashes its write.
_SURROGATES = re.compile("[\ud800-\udfff]")


def readable(text: str) -> str:
    """text with every lone surrogate (a byte of a file name that is not UTF-8) made U+FFFD,
    the replacement character: text that can be written as UTF-8 and read by people."""
    return _SURROGATES.sub("\ufffd", text)


def cut(text: str, limit: int = MAX_ERROR) -> str:
    """text, or its start and a marker saying how long it was, at most `limit` characters; any
    byte of a file name that is not UTF-8 in it made U+FFFD (readable)."""
    text = readable(text)
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


_SIZE_UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}  # as the board file writes sizes


def format_size(size: int) -> str:
    """Bytes as the board file writes a size: '1GiB', '512MiB', '1.5GiB'."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size >= _SIZE_UNITS[unit]:
            return f"{size / _SIZE_UNITS[unit]:.4g}{unit}"
    return f"{size}B"


def iso(t: float | None) -> str | None:
    """Epoch seconds as UTC ISO 8601 with milliseconds: 2026-11-21T22:42:57.123Z."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
