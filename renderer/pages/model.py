"""What the pages show: status.json's content (the manifest), the split manifest (status/), and
the contexts index.html, a split board's group pages and each card are rendered from;
renderer.pages.write writes them.

`Pages` keeps all of it between writes, so the daemon recomputes only the charts that changed
(`dirty`) or whose state turned with time: each chart's entry, its JSON and its card are made
once per change, and the manifests are joined from those pieces. Templates are looked up in the
board's own `templates` folder first, then the built-in site/templates; everything is
autoescaped and every link is relative.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from renderer import jsonfile
from renderer.errors import ConfigError

from renderer.pages import groups

from renderer.pages import templating
from renderer.board.config import log_failed
from renderer.board.model import Board, Chart, Failed
from renderer.store.repair import stamp
from renderer.board.inputs import unready, waiting_for
from renderer.store.records import ChartRecord, hash_of
from renderer.pages.status import judge
from renderer.text import iso
from renderer.pages.templating import site_dir, static_files  # noqa: F401 - site_dir re-exported
from renderer.board.windows import IGNORED, ignores_window, worst

log = logging.getLogger("plotboard")

GROUP_PAGES = "groups"  # a split board's group pages: OUTPUT/groups/ID.html


def chart_entry(board: Board, chart: Chart, records: dict[str, ChartRecord], now: float) -> dict[str, Any]:
    """The chart's status.json entry (with its windows), its state judged at `now`; a chart
    whose image is not in the output folder is never reported ok."""
    def judged(chart: Chart, rec: ChartRecord | None) -> tuple[str, str | None]:
        rec = rec or ChartRecord()
        error = rec.error
        image = f"{chart.window_of}.{chart.window.name}.png" if chart.window_of else f"{chart.name}.png"
        if error is None and rec.rendered_at is not None and stamp(os.path.join(board.output, image)) is None:
            error = f"ImageMissing: {image} is not in the output folder"
        return judge(error, rec.rendered_at, chart.stale_after, now), error

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
        **({"axes": rec.axes} if rec.axes and chart.zoom else {}),  # the page's zoom by drag (README.md "Zoom")
    }
    return waiting(window_entries(board, chart, records, entry, judged))


def waiting(entry: dict[str, Any]) -> dict[str, Any]:
    """A chart waiting for an input file that is not there yet is pending, not ok (nor stale):
    what it drew had nothing to draw from (renderer.pages.status.rejudge judges so too)."""
    if entry.get("waiting_for") and entry["state"] in ("ok", "stale"):
        entry["state"] = "pending"
    return entry


def window_entries(board: Board, chart: Chart, records: dict[str, ChartRecord],
                   entry: dict[str, Any], judge_entry) -> dict[str, Any]:
    """The chart's status.json entry with its `windows` (each judged by `judge_entry(chart,
    record)` -> (state, error)), its state the worst of theirs and its error the first one's."""
    windows = []
    for c in board.windows_of(chart.name):
        rec = records.get(c.name)
        state, error = judge_entry(c, rec)
        windows.append({"name": c.window.name, "image": f"{chart.name}.{c.window.name}.png",
                        "hash": rec.hash if rec else None, "rendered_at": entry_time(rec),
                        "state": state, "error": error, **({"axes": rec.axes} if rec and rec.axes and c.zoom else {})})
    if not windows:
        return entry
    entry["windows"] = windows
    entry["state"] = worst([w["state"] for w in windows])
    if entry["error"] is None:
        entry["error"] = next((f"{w['name']}: {w['error']}" for w in windows if w["error"]), None)
    if ignores_window(board, hash_of(records), chart.name):
        entry["warning"] = IGNORED
    return entry


def failed_entry(failed: Failed) -> dict[str, Any]:
    """A family member left out of the board (renderer.board.model.Failed), as status.json shows
    it: a chart in error that was never rendered, its error naming the file(s)."""
    return {"name": failed.name, "title": failed.title, "group": failed.group, "image": f"{failed.name}.png",
            "hash": None, "state": "error", "rendered_at": None, "changed_at": None, "duration_ms": None,
            "renders": 0, "failures": 0, "error": failed.error, "stale_after_s": None, "waiting_for": [],
            "family": failed.family}


def entry_time(rec: ChartRecord | None) -> str | None:
    return iso(rec.rendered_at) if rec else None


def turns_stale_at(board: Board, chart: Chart, records: dict[str, ChartRecord]) -> float | None:
    """When the chart (or one of its windows) turns stale, or None."""
    times = []
    for c in board.windows_of(chart.name) or [chart]:
        rec = records.get(c.name)
        if c.stale_after is not None and rec is not None and rec.rendered_at is not None and not rec.error:
            times.append(rec.rendered_at + c.stale_after)
    return min(times, default=None)


def card(chart: Chart, entry: dict[str, Any]) -> dict[str, Any]:
    """What a card shows: the chart's entry, its description, its images and their size."""
    width, height = chart.pixels
    return {**entry, "description": chart.description,
            "image2x": f"{chart.name}@2x.png" if chart.hidpi else None,
            "svg": f"{chart.name}.svg" if "svg" in chart.formats else None, "width": width, "height": height,
            "history": f"history/{chart.name}.json" if chart.history else None, "zoom": chart.zoom}


def _dumps(obj: Any) -> str:
    # Compact: json's C encoder (indent= takes the pure-Python one, ~6x slower on a big board).
    return jsonfile.compact(obj)


@dataclass
class Snapshot:
    """The pages as of one update: status.json's bytes, the split manifest's files, the
    context every page is rendered from, and which groups changed since the last update."""

    status_json: bytes
    status_files: dict[str, bytes]
    context: dict[str, Any]
    changed_groups: set[str] = field(default_factory=set)  # ids; every group after a full update
    full: bool = True


class Pages:
    """Every chart's entry, JSON and card, kept between updates (see the module's docstring)."""

    def __init__(self) -> None:
        self.board: Board | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.json: dict[str, str] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        self.html: dict[str, Any] = {}  # chart -> its card's rendered HTML (Markup), made by the writer
        self.stale_at: dict[str, float] = {}  # chart -> when its entry turns stale (to recompute it then)
        self.group_files: dict[str, bytes] = {}
        self.hashes: dict[str, str] = {}  # status/ID.json -> its hash
        self.layout: _Layout | None = None
        self.summaries: dict[str, dict[str, Any]] = {}
        self.shows: str | None = None  # the digest of what index.html shows, while no card changes (renderer.pages.write)
        self.static = static_files()
        # status.json's `publish` (renderer.publish), set by whoever writes the pages; kept
        # across a full update, which calls __init__ again.
        self.publish: dict[str, Any] | None = getattr(self, "publish", None)
        self.problems: list[dict[str, str]] = []  # the board's own: {"what": ..., "message": ...}

    def update(self, board: Board, records: dict[str, ChartRecord], now: float,
               dirty: set[str] | None = None) -> Snapshot:
        """The pages now. `dirty`: the charts (or windows) whose records changed since the last
        update; None (or another board) recomputes everything."""
        full = dirty is None or board is not self.board
        if full:
            problems = self.problems
            self.__init__()
            self.problems = problems
            self.board = board
            names = [c.name for c in board.shown]
            self.layout = _Layout(board)
            self.static = static_files(self.layout.features)
        else:
            shown = set()
            for n in dirty:
                try:
                    shown.add(board.chart(n).window_of or n)
                except KeyError:  # removed since: the board's next reload updates everything
                    pass
            names = sorted(shown | {n for n, at in self.stale_at.items() if at < now})
        self.shows = self.shows if not names else None
        for name in names:
            chart = board.chart(name)
            entry = chart_entry(board, chart, records, now)
            self.entries[name], self.json[name] = entry, _dumps(entry)
            self.cards[name] = card(chart, entry)
            self.html.pop(name, None)
            at = turns_stale_at(board, chart, records)
            if at is None or at < now:
                self.stale_at.pop(name, None)
            else:
                self.stale_at[name] = at
        if full:
            for failed in board.failed:  # they never change while the board is the same
                entry = failed_entry(failed)
                self.entries[failed.name], self.json[failed.name] = entry, _dumps(entry)
                width, height = failed.pixels
                self.cards[failed.name] = {**entry, "description": "", "image2x": None, "svg": None,
                                           "width": width, "height": height}
                names.append(failed.name)
        return self._snapshot(board, now, set(names), full)

    def cards_html(self, board: Board, base: str) -> Any:
        """A function giving a group's cards' HTML (_card.html each, joined) for the pages at
        `base`, each card rendered once per change of its chart."""
        from markupsafe import Markup

        template = None

        def html(g: dict[str, Any]) -> Any:
            nonlocal template
            parts = []
            for c in g["charts"]:
                made = self.html.get(c["name"])
                if made is None or made[0] != base:
                    template = template or templating.renderer(board.templates, templating.CARD)
                    made = self.html[c["name"]] = (base, render_card(template, c, base))
                parts.append(made[1])
            return Markup("".join(parts))

        return html

    def _snapshot(self, board: Board, now: float, changed: set[str], full: bool) -> Snapshot:
        shape = self.layout
        cards = [self.cards[n] for n in shape.names]
        info = {"title": board.title, "generated_at": iso(now), "refresh_s": board.refresh}
        families = [{"name": f.name, "foreach": f.foreach, "members": len(f.members), "group": f.group,
                     **({"failed": len(f.failed)} if f.failed else {})} for f in board.families]
        tail = f',"families":{_dumps(families)}' if families else ""
        tail += f',"publish":{_dumps(self.publish)}' if self.publish is not None else ""
        tail += f',"problems":{_dumps(self.problems)}' if self.problems else ""
        status_json = (f'{{"board":{_dumps(info)},"charts":['
                       + ",".join([self.json[n] for n in shape.names]) + f"]{tail}}}").encode()
        files, index_groups = {}, []
        changed_groups = {shape.section_of[n] for n in changed if n in shape.section_of}
        sections = []
        for sid, group, names, width in shape.sections:
            section = {"id": sid, "name": group, "charts": [self.cards[n] for n in names]}
            sections.append(section)
            name = f"{groups.STATUS_DIR}/{sid}.json"
            if full or name not in self.group_files or sid in changed_groups:
                self.group_files[name] = (f'{{"group":{_dumps(group)},"charts":['
                                          + ",".join([self.json[n] for n in names]) + "]}").encode()
                self.hashes[name] = hashlib.sha256(self.group_files[name]).hexdigest()[:16]
                changed_groups.add(sid)
            files[name] = self.group_files[name]
            if sid in changed_groups or sid not in self.summaries:
                self.summaries[sid] = groups.summary(section["charts"])
            brief = self.summaries[sid]
            section.update(hash=self.hashes[name], summary=brief, empty_families=[], width=width,
                           names=shape.names_text[sid])
            index_groups.append({"id": section["id"], "name": section["name"], "hash": section["hash"],
                                 "counts": brief["counts"],
                                 **({"trouble": brief["trouble"], "more": brief["more"]} if brief["trouble"] else {})})
        self.group_files = {n: files[n] for n in files}
        layout = shape.digest
        index_board = {**info, "layout": layout, **({"problems": self.problems} if self.problems else {})}
        files[groups.STATUS_INDEX] = jsonfile.dumps({"board": index_board, "groups": index_groups},
                                                    indent=1).encode()
        grouped = any(c.group is not None for c in [*board.charts, *board.failed, *board.families])
        split = grouped and len(cards) > board.page_limit
        for section in sections:
            section["page"] = f"{GROUP_PAGES}/{section['id']}.html" if split else None
        empty = [f for f in families if not f["members"] and not f.get("failed")]
        for section in sections:  # a family that matches nothing shows in its own group's section
            section["empty_families"] = [f for f in empty if f["group"] == section["name"]]
        version = hashlib.sha256(b"".join(self.static.values())).hexdigest()[:10]
        context = {"board": {**info, "theme": board.theme, "layout": layout, "problems": self.problems,
                             **{f: True for f in shape.features}}, "charts": cards, "groups": sections,
                   "grouped": grouped, "split": split, "static_version": version, "empty_families": empty,
                   "publish": self.publish}
        return Snapshot(status_json, files, context, changed_groups, full)


class _Layout:
    """What the pages show of a board's shape, made once per board: the charts shown in order,
    their sections (id, group, chart names, widest image) and the layout's digest (which charts
    in which groups: an open page reloads when it changes)."""

    def __init__(self, board: Board) -> None:
        # A family's members left out (board.failed) come last, each in its family's group.
        shown = ([{"name": c.name, "group": c.group, "width": c.pixels[0]} for c in board.shown]
                 + [{"name": f.name, "group": f.group, "width": f.pixels[0]} for f in board.failed])
        self.names = [c["name"] for c in shown]
        # A family that matches no file has a section of its group even when no chart is in it.
        self.sections = [(s["id"], s["name"], [c["name"] for c in s["charts"] if c["name"] is not None],
                          max((c["width"] for c in s["charts"]), default=0))
                         for s in groups.sections(groups.with_empty_families(board, shown))]
        self.section_of = {n: sid for sid, _, names, _ in self.sections for n in names}
        self.names_text = {sid: " ".join(names) for sid, _, names, _ in self.sections}
        # A chart that keeps history is marked (its card opens the history view): a board without is as before.
        # So is a zoomable one (its card offers the zoom control when the daemon answers).
        marked = {c.name: [1] * bool(c.history) + ["z"] * c.zoom for c in board.shown if c.history or c.zoom}
        self.features = [f for f in ("history", "zoom") if any(getattr(c, f) for c in board.shown)]
        self.digest = hashlib.sha256(_dumps([[c["name"], c["group"], *marked.get(c["name"], [])]
                                             for c in shown]).encode()).hexdigest()[:16]


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


def render_card(template: Callable[[dict[str, Any]], str], c: dict[str, Any], base: str) -> Any:
    """One card's HTML (_card.html through templating.renderer), as markup the pages put in as it is."""
    from markupsafe import Markup

    return Markup(template({"c": c, "base": base}))


def sample_contexts(board: Board, now: float) -> list[dict[str, Any]]:
    """What the board's templates are tried with when it is loaded: every chart pending, then
    every chart ok, then every chart failed (with an image from before); a split board's
    first group page in each of those."""
    ok = ChartRecord(hash="0" * 16, rendered_at=now, changed_at=now, duration_ms=1.0, renders=1)
    failed = ChartRecord(hash="0" * 16, rendered_at=now, changed_at=now, duration_ms=1.0, renders=1, failures=1,
                         error="ExampleError: how a failed render shows")
    contexts = [Pages().update(board, {c.name: rec for c in board.charts if rec}, now).context
                for rec in (None, ok, failed)]
    return contexts + [page for c in contexts for page in list(group_contexts(c).values())[:1]]


def check_templates(board: Board) -> str | None:
    """The board's own templates' problem, on one line, or None (see renderer.pages.templating)."""
    if board.templates is None:
        return None
    return templating.check(board.templates, sample_contexts(board, time.time()))


def check_use(board: Board) -> None:
    """What `build` and `run` check of a loaded board before they use it: a template that does
    not render is an error (ConfigError); a missing input file only a warning: a producer may
    create it later, and the chart renders once it appears."""
    problem = check_templates(board)
    if problem:
        raise ConfigError(board.path, [f"board.templates: {problem}"])
    for failed in board.failed:
        log_failed(board, failed)
    for i, chart in enumerate(board.shown):
        for missing, kind in unready(chart, board.root):
            if kind is not None:
                log.warning("%s: charts[%d] (%s).inputs: %s is %s, not a regular file; the chart shows \"waiting "
                            "for %s (%s, not a regular file)\" until a file replaces it",
                            board.path, i, chart.name, missing, kind, missing, kind)
                continue
            log.warning("%s: charts[%d] (%s).inputs: %s does not exist; the chart shows \"waiting for %s\" "
                        "until it appears (a typo?)", board.path, i, chart.name, missing, missing)
