"""The boundary check of .plotboard/state.json: what a chart's record may hold.

The file is plotboard's, but anything may have happened to it (an old version, a half-restored
backup, a hand edit, another tool). A record is kept only when every field it has is of the
type plotboard writes, and when every file it lists is a name plotboard could have published
for that chart, so bookkeeping can never make plotboard delete a file it did not write.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from renderer.board.kinds import NAME_RE
from renderer.text import MAX_ERROR, cut

MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant status.json can write
HASH_RE = re.compile(r"[0-9a-f]{1,64}\Z")
# A window as written in the board file ("1d", "7d", "500ms"): digits and a unit, never a dot first.
WINDOW = r"[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w)"
OUTPUT_SUFFIX = re.compile(rf"(?:\.{WINDOW})?(?:\.png|@2x\.png|\.svg)\Z")
# A record's name: a chart's, or a later window's internal chart (NAME.WINDOW, renderer.board.families).
RECORD_NAME_RE = re.compile(rf"{NAME_RE.pattern[:-2]}(?:\.{WINDOW})?\Z")


def could_have_written(chart: str, file: object) -> bool:
    """Whether `file` is a name plotboard publishes for `chart`: NAME.png, NAME@2x.png,
    NAME.svg, or a window's NAME.WINDOW.png (…@2x.png, ….svg); never a path."""
    return (isinstance(file, str) and bool(RECORD_NAME_RE.match(chart)) and file.startswith(chart)
            and bool(OUTPUT_SUFFIX.match(file, len(chart))))


Check = Callable[[str, Any], str | None]  # (chart name, value) -> the problem, or None


def _optional(check: Check) -> Check:
    return lambda chart, v: None if v is None else check(chart, v)


def _text(chart: str, v: Any) -> str | None:
    return None if isinstance(v, str) else f"expected text, got {_shown(v)}"


def _hash(chart: str, v: Any) -> str | None:
    return None if isinstance(v, str) and HASH_RE.match(v) else f"expected hex digits, got {_shown(v)}"


def _count(chart: str, v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 53
    return None if ok else f"expected a whole number >= 0, got {_shown(v)}"


def _number(limit: float) -> Check:
    def check(chart: str, v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= limit
        return None if ok else f"expected a number from 0 to {limit:g}, got {_shown(v)}"
    return check


def _files(chart: str, v: Any) -> str | None:
    if not isinstance(v, list):
        return f"expected a list of file names, got {_shown(v)}"
    bad = [f for f in v if not could_have_written(chart, f)]
    return f"not a file plotboard writes for {chart!r}: {_shown(bad[0])}" if bad else None


def _stamps(chart: str, v: Any) -> str | None:
    if not isinstance(v, dict):
        return f"expected an object of file stamps, got {_shown(v)}"
    for file, stamp in v.items():
        if not could_have_written(chart, file):
            return f"not a file plotboard writes for {chart!r}: {_shown(file)}"
        if not (isinstance(stamp, list) and len(stamp) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in stamp)):
            return f"{file}: expected [size, mtime_ns], got {_shown(stamp)}"
    return None


def _modules(chart: str, v: Any) -> str | None:
    if isinstance(v, dict) and all(isinstance(k, str) and isinstance(d, str) for k, d in v.items()):
        return None
    return f"expected an object of module paths and digests, got {_shown(v)}"


HISTORY_FILE_RE = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.png\Z")  # renderer.store.history's STAMP.png
HISTORY_STATES = ("ok", "stale", "error")


def _history(chart: str, v: Any) -> str | None:
    if not isinstance(v, list):
        return f"expected a list of past images, got {_shown(v)}"
    for entry in v:
        ok = (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)
              and bool(HISTORY_FILE_RE.match(entry[0])) and _number(MAX_TIME)(chart, entry[1]) is None
              and entry[2] in HISTORY_STATES and _stamp(entry[3:]))
        if not ok:
            return f"expected [STAMP.png, rendered_at, state, size, mtime_ns], got {_shown(entry)}"
    return None


def _stamp(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v))


def _history_list(chart: str, v: Any) -> str | None:
    return None if _stamp(v) else f"expected [size, mtime_ns], got {_shown(v)}"


def _axes(chart: str, v: Any) -> str | None:
    def numbers(x: Any, n: int, limit: float) -> bool:
        return (isinstance(x, list) and len(x) == n and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and abs(f) <= limit for f in x))
    ok = (isinstance(v, dict) and set(v) == {"box", "x"} and numbers(v["box"], 4, 10.0)
          and (v["x"] is None or numbers(v["x"], 2, 1e11)))
    return None if ok else 'expected {"box": [4 numbers], "x": [2 numbers] or null}'


CHECKS: dict[str, Check] = {  # one per field of renderer.store.records.ChartRecord
    "fingerprint": _optional(_text),
    "hash": _optional(_hash),
    "rendered_at": _optional(_number(MAX_TIME)),
    "changed_at": _optional(_number(MAX_TIME)),
    "duration_ms": _optional(_number(MAX_TIME * 1000)),
    "renders": _count,
    "failures": _count,
    "error": _optional(_text),
    "failed_at": _optional(_number(MAX_TIME)),
    "failed_fingerprint": _optional(_text),
    "consecutive_failures": _count,
    "files": _files,
    "stamps": _stamps,
    "modules": _modules,
    "history": _history,
    "history_list": _optional(_history_list),
    "axes": _optional(_axes),
}


def check_record(name: object, raw: object) -> dict[str, Any] | str:
    """The record's fields (those it has, error text cut to MAX_ERROR), or why it is invalid.

    Keys plotboard does not know are ignored, so a newer version's file still loads.
    """
    if not isinstance(name, str) or not RECORD_NAME_RE.match(name):
        return f"{_shown(name)}: not a chart name"
    if not isinstance(raw, dict):
        return f"{name}: expected an object, got {_shown(raw)}"
    values: dict[str, Any] = {}
    for key, check in CHECKS.items():
        if key in raw:
            problem = check(name, raw[key])
            if problem:
                return f"{name}.{key}: {problem}"
            values[key] = raw[key]
    if values.get("error") is not None:
        values["error"] = cut(values["error"], MAX_ERROR)
    values["files"] = sorted(set(values.get("files", [])))
    return values


def check_state(data: object) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The valid records of a parsed state.json (name -> fields), and the problems found."""
    charts = data.get("charts") if isinstance(data, dict) else None
    if not isinstance(charts, dict):
        return {}, ["not plotboard's bookkeeping (expected an object with a 'charts' object)"]
    records: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name, raw in charts.items():
        checked = check_record(name, raw)
        if isinstance(checked, str):
            problems.append(checked)
        else:
            records[name] = checked
    return records, problems


def _shown(v: Any) -> str:
    """A value as a problem names it: a scalar's repr, cut short; a list or object by its kind."""
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return cut(json.dumps(v), 60)
