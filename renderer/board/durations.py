"""Durations ('500ms', '30s', '5m', '1h', '1d', '1w'), sizes ('512MiB', '2GiB') and cron periods,
as the board file writes them; when a chart's schedule makes it due next."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from renderer.board.model import Chart

DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*\Z")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_DURATION = 365 * 86400.0  # a year: 3 × every (stale_after's default) and due times stay finite


def parse_duration(value: object) -> float:
    """'500ms', '30s', '5m', '1h', '1d', '1w' (or a number of seconds) to seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := DURATION_RE.match(value)):
        seconds = float(m.group(1)) * UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration like '500ms', '30s', '5m', '1h' or '1d', got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"expected a duration of at most a year (8760h), got {value!r}")
    return seconds


SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|TiB)\s*\Z")
SIZE_UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def parse_size(value: object) -> int:
    """'512MiB', '2GiB' (binary units; 'KiB' and 'TiB' too) to bytes."""
    if isinstance(value, str) and (m := SIZE_RE.match(value)):
        size = int(float(m.group(1)) * SIZE_UNITS[m.group(2)])
        if size > 0:
            return size
        raise ValueError(f"expected a positive size, got {value!r}")
    raise ValueError(f"expected a size like '512MiB' or '2GiB', got {value!r}")


def cron_period(expr: str) -> float:
    """Seconds between two consecutive firings of a cron expression (raises ValueError if bad)."""
    from cronsim import CronSim, CronSimError

    try:
        it = CronSim(expr, datetime.now(timezone.utc))
        first, second = next(it), next(it)
    except (CronSimError, StopIteration) as exc:
        raise ValueError(f"not a valid cron expression: {expr!r} ({exc})") from None
    return (second - first).total_seconds()


def next_due(chart: Chart, last: float) -> float | None:
    """Epoch seconds of the first scheduled render after `last`, or None for on-change charts."""
    if chart.every is not None:
        return last + chart.every
    if chart.cron is not None:
        from cronsim import CronSim

        after = datetime.fromtimestamp(last, timezone.utc).astimezone()  # cron speaks local time
        return next(iter(CronSim(chart.cron, after))).timestamp()
    return None
