"""Groups: the board's sections and their summaries.

A chart's `group` puts it in a section; sections come in the order their groups first appear
in the board file, and charts without a group form a section of their own where the first of
them appears. Each section has an id made from its name (`group-ID` on the page, the file
`status/ID.json` holding its charts' manifest entries and, on a split board, its page
`groups/ID.html`; renderer.pages.model makes them), so an open page polls the small
`status/index.json` (one hash per group) and fetches only the groups whose hash changed.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from renderer.board.kinds import UNGROUPED, group_id  # noqa: F401 - UNGROUPED re-exported

STATES = ("error", "stale", "pending", "ok")  # the order a summary counts them: trouble first
STATUS_DIR = "status"
STATUS_INDEX = f"{STATUS_DIR}/index.json"
GROUP_FILE_RE = re.compile(rf"{STATUS_DIR}/[a-z0-9][a-z0-9-]*\.json\Z")
GROUP_PAGE_RE = re.compile(r"groups/[a-z0-9][a-z0-9-]*\.html\Z")  # a split board's group pages
MAX_NAMED = 12  # charts in trouble a summary names, at most


slug = group_id  # a group's id (renderer.board.kinds: the board file's loader limits its length)


def sections(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries (status.json's, each with "group") as sections in first-appearance order:
    [{"id", "name", "charts": [...]}].

    An id is the group's slug (renderer.board.kinds.group_id) when no group before it has that
    slug; a later group with the same slug gets a digest of its own name appended
    (`a-b-3f2c91d0`), never a counter by order, so adding, removing or moving other groups never
    moves an id (deep links `#group-ID` and groups/ID.html stay put). "index" (status/index.json's
    name) and "ungrouped" (the section of charts without a group) are never a named group's
    plain id."""
    by_name: dict[str | None, dict[str, Any]] = {}
    taken = {"index", UNGROUPED}
    for entry in entries:
        name = entry.get("group")
        section = by_name.get(name)
        if section is None:
            sid = UNGROUPED if name is None else unique_id(name, taken)
            taken.add(sid)
            section = by_name[name] = {"id": sid, "name": name, "charts": []}
        section["charts"].append(entry)
    return list(by_name.values())


def unique_id(name: str, taken: set[str]) -> str:
    """The group's slug, or when that is taken, the slug and a digest of the name (longer
    digests in the unlikely case that one is taken too)."""
    base = slug(name)
    if base not in taken:
        return base
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    for length in (8, 12, 16):  # with MAX_GROUP_ID, a file name still fits 255 bytes
        if (sid := f"{base}-{digest[:length]}") not in taken:
            return sid
    raise AssertionError(f"no free id for the group {name!r}")  # pragma: no cover: 2**64 names


def summary(charts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per state (trouble first, states with none left out) and the charts in error,
    then the stale ones, named (at most MAX_NAMED)."""
    counts = {state: 0 for state in STATES}
    for c in charts:
        counts[c["state"]] = counts.get(c["state"], 0) + 1
    trouble = [c for state in ("error", "stale") for c in charts if c["state"] == state]
    return {
        "counts": {s: n for s, n in counts.items() if n},
        "trouble": [{"name": c["name"], "title": c["title"], "state": c["state"]} for c in trouble[:MAX_NAMED]],
        "more": max(0, len(trouble) - MAX_NAMED),
    }


def with_empty_families(board: Any, shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`shown` (entries with "name" and "group", in board order) with an entry (name None) for
    each family whose glob matches nothing, where its table stands in the board file, so that
    its group's section exists and comes in board order even when no chart is in that group."""
    tables = board.data.get("charts") if isinstance(board.data, dict) else None
    tables = [t if isinstance(t, dict) else {} for t in tables] if isinstance(tables, list) else []
    members = {f.name: {*f.members, *f.failed} for f in board.families}
    out = list(shown)
    for family in board.families:
        if family.members or family.failed:
            continue
        k = next((i for i, t in enumerate(tables) if "foreach" in t and t.get("name") == family.name), None)
        at = len(out)
        if k is not None:
            before = set()
            for t in tables[:k]:
                before |= members.get(t.get("name"), set()) if "foreach" in t else {t.get("name")}
            at = max((i + 1 for i, c in enumerate(out) if c["name"] is not None and c["name"] in before), default=0)
        out.insert(at, {"name": None, "group": family.group, "width": 0})
    return out
