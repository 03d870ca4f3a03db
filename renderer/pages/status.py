"""Chart states and the manifest: judged from `rendered_at` and `stale_after_s` at the
moment someone looks, so a board whose daemon died turns stale by itself."""

from __future__ import annotations

import math
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
    if states & {"stale", "pending"} or manifest.get("problems"):
        return STALE
    return OK


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


def summary(manifest: dict[str, Any], code: int) -> str:
    """One line in the monitoring-plugin style, naming the charts that are not ok.

    Always one line of at most MAX_STATUS_LINE characters: each error is made one line and cut
    to MAX_STATUS_ERROR characters, whatever the messages hold.
    """
    word = {OK: "OK", STALE: "WARNING", ERROR: "CRITICAL"}[code]
    charts = manifest["charts"]
    bad = [e for e in charts if e["state"] != "ok"]
    board = [f"{p['what']}: {cut(one_line(p['message']), MAX_STATUS_ERROR)}" for p in manifest.get("problems", [])]
    if not bad:
        return status_line(f"PLOTBOARD {word} - " + "; ".join([*board, f"{count(len(charts), 'chart')} ok"]))
    parts = board
    for e in bad:
        detail = f" ({cut(one_line(e['error']), MAX_STATUS_ERROR)})" if e["state"] == "error" and e.get("error") else ""
        parts.append(f"{e['name']} {e['state']}{detail}")
    return status_line(f"PLOTBOARD {word} - " + "; ".join(parts))


def status_line(text: str) -> str:
    """text as `plotboard status` prints it: one line, at most MAX_STATUS_LINE characters."""
    return cut(one_line(text), MAX_STATUS_LINE)
