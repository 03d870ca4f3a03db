"""What the pages show: status.json's content (the manifest), and the contexts index.html and a
split board's group pages are rendered from (renderer.pagewrite writes them).

Templates are looked up in the board's own `templates` folder first, then the built-in
site/templates; everything is autoescaped and every link is relative.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from renderer import groups, templating
from renderer import jsonfile
from renderer.config import Board
from renderer.repair import stamp
from renderer.state import ChartRecord, waiting_for
from renderer.status import iso, judge
from renderer.templating import site_dir  # noqa: F401 - re-exported
from renderer.windows import window_entries

GROUP_PAGES = "groups"  # a split board's group pages: OUTPUT/groups/ID.html


def manifest(board: Board, records: dict[str, ChartRecord], now: float) -> dict[str, Any]:
    """status.json's content, states judged at `now`."""
    def judged(chart, rec: ChartRecord | None) -> tuple[str, str | None]:
        rec = rec or ChartRecord()
        error = rec.error
        image = f"{chart.window_of}.{chart.window.name}.png" if chart.window_of else f"{chart.name}.png"
        if error is None and rec.rendered_at is not None and stamp(board.output / image) is None:
            error = f"ImageMissing: {image} is not in the output folder"  # never reported ok
        return judge(error, rec.rendered_at, chart.stale_after, now), error

    charts = []
    for chart in board.shown:
        rec = records.get(chart.name) or ChartRecord()
        state, error = judged(chart, rec)
        entry = {
            "name": chart.name,
            "title": chart.title,
            "group": chart.group,
            "image": f"{chart.name}.png",
            "hash": rec.hash,
            "state": state,
            "rendered_at": iso(rec.rendered_at),
            "changed_at": iso(rec.changed_at),
            "duration_ms": None if rec.duration_ms is None else round(rec.duration_ms, 1),
            "renders": rec.renders,
            "failures": rec.failures,
            "error": error,
            "stale_after_s": chart.stale_after,
            "waiting_for": waiting_for(chart, board.root),
            **({"family": chart.family} if chart.family else {}),
        }
        charts.append(window_entries(board, chart, records, entry, judged))
    families = [{"name": f.name, "foreach": f.foreach, "members": len(f.members)} for f in board.families]
    return {
        "board": {"title": board.title, "generated_at": iso(now), "refresh_s": board.refresh},
        "charts": charts,
        **({"families": families} if families else {}),
    }


def static_files() -> dict[str, bytes]:
    """The built-in static assets, by name."""
    folder = site_dir() / "static"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}


def index_context(board: Board, man: dict[str, Any], static: dict[str, bytes]) -> dict[str, Any]:
    """What index.html is rendered from: the board, every chart (`charts`) and the same charts
    in their sections (`groups`: id, name, hash of status/ID.json, summary, charts, `page`),
    besides the split manifest's files (`status_files`, by name) that the page polls.

    A grouped board of more than `page_limit` charts is `split`: index.html lists its groups,
    and each group's cards are on its own page, groups/ID.html (`page`)."""
    version = hashlib.sha256(b"".join(static.values())).hexdigest()[:10]
    charts = []
    for chart, entry in zip(board.shown, man["charts"]):
        width, height = chart.pixels
        charts.append({
            **entry,
            "description": chart.description,
            "image2x": f"{chart.name}@2x.png" if chart.hidpi else None,
            "svg": f"{chart.name}.svg" if "svg" in chart.formats else None,
            "width": width,
            "height": height,
        })
    layout = groups.layout_hash(man)
    files = groups.split_manifest(man, layout)
    index = jsonfile.loads(files[groups.STATUS_INDEX])
    grouped = any(c.group is not None for c in board.charts)
    split = grouped and len(charts) > board.page_limit
    sections = [{**section, "hash": info["hash"], "summary": groups.summary(section["charts"]),
                 "page": f"{GROUP_PAGES}/{section['id']}.html" if split else None, "empty_families": []}
                for section, info in zip(groups.sections(charts), index["groups"])]
    empty = [f for f in man.get("families", []) if not f["members"]]
    if empty and not sections:
        sections = [{"id": groups.UNGROUPED, "name": None, "charts": [], "hash": "", "page": None,
                     "summary": groups.summary([]), "empty_families": []}]
    if sections:
        sections[-1]["empty_families"] = empty
    return {"board": {**man["board"], "theme": board.theme, "layout": layout}, "charts": charts,
            "groups": sections, "grouped": grouped, "split": split,
            "static_version": version, "status_files": files, "empty_families": empty}


def group_contexts(context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The split board's group pages, by file name (groups/ID.html): each its group, the
    groups before and after it, and the board."""
    if not context["split"]:
        return {}
    sections = context["groups"]
    pages = {}
    for i, section in enumerate(sections):
        pages[section["page"]] = {
            "board": context["board"], "static_version": context["static_version"], "group": section,
            "prev": sections[i - 1] if i > 0 else None, "next": sections[i + 1] if i + 1 < len(sections) else None,
            "first": sections[0],
        }
    return pages


def render_index(board: Board, context: dict[str, Any]) -> str:
    """index.html's text; raises templating.TemplateFailed (one line: template file and line)."""
    return templating.render(board.templates, context)


def render_group(board: Board, context: dict[str, Any]) -> str:
    """A group page's text (groups/ID.html); raises templating.TemplateFailed."""
    return templating.render(board.templates, context, templating.GROUP_PAGE)


def sample_contexts(board: Board, now: float) -> list[dict[str, Any]]:
    """What the board's templates are tried with when it is loaded: every chart pending, then
    every chart ok, then every chart failed (with an image from before); a split board's
    first group page in each of those."""
    static = static_files()
    ok = ChartRecord(hash="0" * 16, rendered_at=now, changed_at=now, duration_ms=1.0, renders=1)
    failed = ChartRecord(hash="0" * 16, rendered_at=now, changed_at=now, duration_ms=1.0, renders=1, failures=1,
                         error="ExampleError: how a failed render shows")
    contexts = [index_context(board, manifest(board, {c.name: rec for c in board.charts if rec}, now), static)
                for rec in (None, ok, failed)]
    return contexts + [page for c in contexts for page in list(group_contexts(c).values())[:1]]


def check_templates(board: Board) -> str | None:
    """The board's own templates' problem, on one line, or None (see renderer.templating)."""
    if board.templates is None:
        return None
    return templating.check(board.templates, sample_contexts(board, time.time()))


