"""Chart states and the manifest: judged from `rendered_at` and `stale_after_s` at the
moment someone looks, so a board whose daemon died turns stale by itself."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from renderer import jsonfile

OK, STALE, ERROR, UNKNOWN = 0, 1, 2, 3
STATUS_FILE = "status.json"


def iso(t: float | None) -> str | None:
    """Epoch seconds as UTC ISO 8601 with milliseconds: 2026-11-21T22:42:57.123Z."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def exit_code(manifest: dict[str, Any]) -> int:
    states = {entry["state"] for entry in manifest["charts"]}
    if "error" in states:
        return ERROR
    if states & {"stale", "pending"}:
        return STALE
    return OK


def read_manifest(output: Path) -> dict[str, Any]:
    """status.json of an output folder; raises OSError or ValueError when missing or unreadable."""
    manifest = jsonfile.loads((output / STATUS_FILE).read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("charts"), list):
        raise ValueError("not a plotboard manifest")
    for entry in manifest["charts"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError("not a plotboard manifest: a chart entry without a name")
    return manifest


def summary(manifest: dict[str, Any], code: int) -> str:
    """One line in the monitoring-plugin style, naming the charts that are not ok."""
    word = {OK: "OK", STALE: "WARNING", ERROR: "CRITICAL"}[code]
    charts = manifest["charts"]
    bad = [e for e in charts if e["state"] != "ok"]
    if not bad:
        return f"PLOTBOARD {word} - {len(charts)} charts ok"
    parts = []
    for e in bad:
        detail = f" ({e['error']})" if e["state"] == "error" and e.get("error") else ""
        parts.append(f"{e['name']} {e['state']}{detail}")
    return f"PLOTBOARD {word} - " + "; ".join(parts)
