"""Per-chart records kept in .plotboard/state.json (what was rendered, when, how it went).
Shared by `build` and `run`, so either one picks up where the other stopped; the fingerprints
they are compared with are renderer.store.fingerprints."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from renderer import jsonfile
from renderer.readfile import BOOKKEEPING_LIMIT, read_file

from renderer.store import module_use

from renderer.board.model import Board
from renderer.store.publish import make_folder, write_atomic
from renderer.store.record_check import check_state
from renderer.text import cut, one_line

log = logging.getLogger("plotboard")

STATE_FILE = "state.json"


@dataclass
class ChartRecord:
    """What plotboard remembers about one chart between renders and between runs."""

    fingerprint: str | None = None  # of the inputs, settings and code of the last good render
    hash: str | None = None  # of the published PNG
    rendered_at: float | None = None  # epoch seconds, end of the last successful render
    changed_at: float | None = None  # last time the image's bytes changed
    duration_ms: float | None = None
    renders: int = 0  # successful renders since the chart first appeared
    failures: int = 0  # failed renders since the chart first appeared
    error: str | None = None  # 'Type: message' of the last render, if it failed
    failed_at: float | None = None
    failed_fingerprint: str | None = None  # what the failed render saw
    consecutive_failures: int = 0
    files: list[str] = field(default_factory=list)  # output files this chart published
    stamps: dict[str, list[int]] = field(default_factory=dict)  # their [size, mtime_ns] (renderer.store.repair)
    modules: dict[str, str] = field(default_factory=dict)  # board files the last render used -> digest
    # Past images kept (renderer.store.history), newest first: [file, rendered_at, state, size, mtime_ns]
    history: list[list] = field(default_factory=list)
    history_list: list[int] | None = None  # [size, mtime_ns] of history/NAME.json as last written
    axes: dict | None = None  # the last image's first axes: {"box": [l, t, r, b], "x": [from, to] | None}


class Records(dict):
    """Chart name -> ChartRecord, as load_state read them. `loaded`: state.json's bytes when
    every record in them was valid, so that a pass which changed no record need not write
    them again (None once anything was dropped or changed)."""

    loaded: bytes | None = None


def load_state(board: Board) -> Records:
    """The records of every chart seen before.

    Bookkeeping of any shape never stops a command: a file that is not readable JSON starts
    afresh, and records that fail renderer.store.record_check are dropped; either is one warning.
    """
    path = board.state_dir / STATE_FILE
    try:
        raw = read_file(path, BOOKKEEPING_LIMIT)  # a FIFO or a device is refused, as unreadable
        data = jsonfile.loads(raw)
    except FileNotFoundError:
        return Records()
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        log.warning("ignored %s (%s): every chart starts afresh", path, reason)
        return Records()
    checked, problems = check_state(data)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        log.warning("ignored invalid bookkeeping in %s (charts without a valid record start afresh): %s", path, one_line(cut(shown)))
    records = Records((name, ChartRecord(**fields_)) for name, fields_ in checked.items())
    records.loaded = None if problems else raw
    for name, rec in records.items():
        module_use.remember(str(board.root), name, rec.modules)
    return records


def save_state(board: Board, records: dict[str, ChartRecord], kept: dict[str, str] | None = None,
               dirty: set[str] | None = None) -> bytes:
    """Write state.json (only when its bytes change: a build with nothing to do stays cheap);
    returns its bytes. `kept` (the daemon keeps one) holds each record's `"name":{...}` JSON from
    the last save, and `dirty` names the records changed since (None: any): only those are encoded again."""
    make_folder(board.state_dir)
    if kept is None:
        data = {"version": 1, "charts": {name: vars(rec) for name, rec in records.items()}}
        text = jsonfile.compact(data).encode()
    else:
        if dirty is None:
            kept.clear()
        for name in dirty or ():
            kept.pop(name, None)
        parts = []
        for name, rec in records.items():
            encoded = kept.get(name)
            if encoded is None:
                encoded = kept[name] = f'{jsonfile.compact(name)}:{jsonfile.compact(vars(rec))}'
            parts.append(encoded)
        for name in [n for n in kept if n not in records]:
            del kept[name]
        text = ('{"version":1,"charts":{' + ",".join(parts) + "}}").encode()  # what the dump above gives
    write_atomic(board.state_dir, STATE_FILE, text, durable=True)
    return text


def hash_of(records: dict[str, ChartRecord]) -> Callable[[str], str | None]:
    """A chart's last image's hash from the records, or None (for renderer.board.windows)."""
    return lambda name: records[name].hash if name in records else None
