"""The alerts' bookkeeping, `.plotboard/alerts.json`: per alert, what each receiver was told
(the charts in trouble it knows of, and when it was told) and the counts status.json shows.
Written atomically, read back leniently: a file of any shape never stops a command (entries
that are not of the shape written are dropped, with one warning)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from renderer import jsonfile
from renderer.board.model import Board
from renderer.readfile import BOOKKEEPING_LIMIT, read_file
from renderer.store.publish import make_folder, write_atomic
from renderer.text import iso

log = logging.getLogger("plotboard")

ALERTS_FILE = "alerts.json"
STATES = ("error", "stale")


@dataclass
class Stats:
    """What status.json's `alerts` list shows of one alert (counts of messages)."""

    sent: int = 0
    failed: int = 0  # failed attempts (each retry counts)
    last_error: str | None = None
    last_sent_at: float | None = None

    def shown(self, name: str) -> dict[str, Any]:
        return {"name": name, "sent": self.sent, "failed": self.failed, "last_error": self.last_error,
                "last_sent_at": iso(self.last_sent_at)}


def _time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load(board: Board) -> tuple[dict[str, dict[str, tuple[str, float]]], dict[str, Stats]]:
    """(told, stats) as last saved, for the board's alerts."""
    path = board.state_dir / ALERTS_FILE
    told: dict[str, dict[str, tuple[str, float]]] = {}
    stats: dict[str, Stats] = {a.name: Stats() for a in board.alerts}
    try:
        data = jsonfile.loads(read_file(path, BOOKKEEPING_LIMIT))
    except FileNotFoundError:
        return told, stats
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("ignored %s (%s): the alerts start afresh", path, type(exc).__name__)
        return told, stats
    alerts = data.get("alerts") if isinstance(data, dict) else None
    dropped = not isinstance(alerts, dict)
    for name, entry in (alerts if isinstance(alerts, dict) else {}).items():
        if name not in stats:
            continue
        if not isinstance(entry, dict):
            dropped = True
            continue
        charts = entry.get("told", {})
        for chart, value in (charts.items() if isinstance(charts, dict) else ()):
            if (isinstance(value, list) and len(value) == 2 and value[0] in STATES and _time(value[1])):
                told.setdefault(name, {})[chart] = (value[0], float(value[1]))
            else:
                dropped = True
        s = stats[name]
        for key in ("sent", "failed"):
            value = entry.get(key, 0)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(s, key, value)
        if isinstance(entry.get("last_error"), str):
            s.last_error = entry["last_error"]
        if _time(entry.get("last_sent_at")):
            s.last_sent_at = float(entry["last_sent_at"])
    if dropped:
        log.warning("ignored invalid entries in %s", path)
    return told, stats


def save(board: Board, told: dict[str, dict[str, tuple[str, float]]], stats: dict[str, Stats]) -> None:
    """Write alerts.json (atomically, durably; only when its bytes change)."""
    data = {"version": 1, "alerts": {
        name: {"told": {chart: list(v) for chart, v in told.get(name, {}).items()}, "sent": s.sent,
               "failed": s.failed, "last_error": s.last_error, "last_sent_at": s.last_sent_at}
        for name, s in stats.items()}}
    make_folder(board.state_dir)
    write_atomic(board.state_dir, ALERTS_FILE, jsonfile.compact(data).encode(), durable=True)
