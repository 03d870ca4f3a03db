"""Chart states and the manifest: judged from `rendered_at` and `stale_after_s` at the
moment someone looks, so a board whose daemon died turns stale by itself."""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from renderer import jsonfile
from renderer.readfile import BOOKKEEPING_LIMIT, read_file
from renderer.text import MAX_STATUS_ERROR, MAX_STATUS_LINE, count, cut, one_line

OK, STALE, ERROR, UNKNOWN = 0, 1, 2, 3
STATUS_FILE = "status.json"


def parse_iso(s: str | None) -> float | None:
    if not s:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def judge(error: str | None, rendered_at: float | None, stale_after: float | None, now: float) -> str:
    """pending (never rendered), error (last render failed), stale, or ok."""
    if error:
        return "error"
    if rendered_at is None:
        return "pending"
    if stale_after is not None and now - rendered_at > stale_after:
        return "stale"
    return "ok"


def rejudge(manifest: dict[str, Any], now: float) -> dict[str, Any]:
    """The manifest with every chart's state judged at `now`."""
    for entry in manifest["charts"]:
        entry["state"] = judge(entry.get("error"), parse_iso(entry.get("rendered_at")), entry.get("stale_after_s"), now)
        if entry["state"] != "error" and isinstance(entry.get("waiting_for"), list) and entry["waiting_for"]:
            entry["state"] = "pending"  # waiting for an input file that is not there yet
    return manifest


def mark_missing(manifest: dict[str, Any], output: Path) -> dict[str, Any]:
    """Charts whose image status.json lists but the output folder lacks are in error."""
    for entry in manifest["charts"]:
        image = entry.get("image")
        if entry.get("rendered_at") and isinstance(image, str) and "/" not in image:
            if not (output / image).is_file():
                entry["state"] = "error"
                entry["error"] = f"ImageMissing: {image} is not in the output folder"
    return manifest


def exit_code(manifest: dict[str, Any]) -> int:
    states = {entry["state"] for entry in manifest["charts"]}
    if "error" in states:
        return ERROR
    if states & {"stale", "pending"} or publish_trouble(manifest) or manifest.get("problems"):
        return STALE
    return OK


def publish_trouble(manifest: dict[str, Any]) -> str | None:
    """What the manifest says went wrong publishing to object storage, or None."""
    publish = manifest.get("publish")
    if not isinstance(publish, dict) or publish.get("state") != "error":
        return None
    error = publish.get("error")
    return f"publish error ({cut(one_line(error), MAX_STATUS_ERROR)})" if isinstance(error, str) and error else "publish error"


def read_manifest(output: Path) -> dict[str, Any]:
    """status.json of an output folder, checked; raises OSError or ValueError when it is missing,
    unreadable or not of the documented shape (renderer.pages.status.problem)."""
    try:
        manifest = jsonfile.loads(read_file(output / STATUS_FILE, BOOKKEEPING_LIMIT))
    except RecursionError:
        raise ValueError(f"{output / STATUS_FILE}: nested too deeply") from None
    why = problem(manifest)
    if why:
        raise ValueError(f"{output / STATUS_FILE}: not a plotboard manifest: {why}")
    return manifest


def problem(manifest: Any) -> str | None:
    """What keeps a parsed status.json from being judged, or None: the fields `status` reads
    must be of the documented types (other fields are passed through untouched)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("charts"), list):
        return "expected an object with a 'charts' list"
    problems = manifest.get("problems", [])
    if not isinstance(problems, list) or not all(isinstance(p, dict) and isinstance(p.get("what"), str)
                                                 and isinstance(p.get("message"), str) for p in problems):
        return "problems: expected a list of objects with a 'what' and a 'message'"
    for i, entry in enumerate(manifest["charts"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return f"charts[{i}]: expected an object with a 'name'"
        rendered_at, error, stale = entry.get("rendered_at"), entry.get("error"), entry.get("stale_after_s")
        if rendered_at is not None and not _is_time(rendered_at):
            return f"charts[{i}].rendered_at: expected an ISO 8601 time or null"
        if error is not None and not isinstance(error, str):
            return f"charts[{i}].error: expected text or null"
        if stale is not None and not (isinstance(stale, (int, float)) and not isinstance(stale, bool)
                                      and math.isfinite(stale)):
            return f"charts[{i}].stale_after_s: expected a number or null"
    return None


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_iso(value)
    except (ValueError, OverflowError):
        return False
    return True


def summary(manifest: dict[str, Any], code: int, now: float | None = None) -> str:
    """One line in the monitoring-plugin style, naming the charts that are not ok, with
    performance data after `|` (perfdata).

    Always one line of at most MAX_STATUS_LINE characters: each error is made one line and cut
    to MAX_STATUS_ERROR characters, whatever the messages hold; the perfdata is never cut.
    """
    word = {OK: "OK", STALE: "WARNING", ERROR: "CRITICAL"}[code]
    charts = manifest["charts"]
    bad = [e for e in charts if e["state"] != "ok"]
    perf = perfdata(manifest, time.time() if now is None else now)
    trouble = publish_trouble(manifest)
    board = [f"{p['what']}: {cut(one_line(p['message']), MAX_STATUS_ERROR)}" for p in manifest.get("problems", [])]
    board += [trouble] if trouble else []
    if not bad:
        return status_line(f"PLOTBOARD {word} - " + "; ".join([*board, f"{count(len(charts), 'chart')} ok"]), perf)
    parts = board
    for e in bad:
        detail = f" ({cut(one_line(e['error']), MAX_STATUS_ERROR)})" if e["state"] == "error" and e.get("error") else ""
        if e["state"] == "pending" and isinstance(e.get("waiting_for"), list) and e["waiting_for"]:
            detail = f" (waiting for {cut(one_line(', '.join(map(str, e['waiting_for']))), MAX_STATUS_ERROR)})"
        parts.append(f"{e['name']} {e['state']}{detail}")
    return status_line(f"PLOTBOARD {word} - " + "; ".join(parts), perf)


def perfdata(manifest: dict[str, Any], now: float) -> str:
    """The monitoring-plugins guidelines' performance data ('label'=value[UOM];warn;crit;min;max):
    the charts by state, and the age of the oldest image (any time window's) in whole seconds,
    left out while no chart has been rendered."""
    states = [e["state"] for e in manifest["charts"]]
    parts = [f"{state}={states.count(state)};;;0" for state in ("ok", "stale", "error", "pending")]
    times = [parse_iso(e.get("rendered_at")) for e in manifest["charts"]]
    times += [parse_iso(w.get("rendered_at")) for e in manifest["charts"] for w in _windows(e)]
    known = [t for t in times if t is not None]
    if known:
        parts.append(f"oldest_age={max(0, int(now - min(known)))}s;;;0")
    return " ".join(parts)


def _windows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """An entry's windows that say when they were rendered (status.json is read from outside)."""
    windows = entry.get("windows")
    if not isinstance(windows, list):
        return []
    return [w for w in windows if isinstance(w, dict) and _is_time(w.get("rendered_at"))]


def status_line(text: str, perf: str = "") -> str:
    """text as `plotboard status` prints it: one line without `|`, at most MAX_STATUS_LINE
    characters, the performance data `perf` (after ` | `) kept whole."""
    text = one_line(text).replace("|", "/")  # a `|` would start the performance data
    if not perf:
        return cut(text, MAX_STATUS_LINE)
    tail = f" | {perf}"
    return cut(text, MAX_STATUS_LINE - len(tail)) + tail
