"""The pages: status.json (the manifest), index.html from jinja2 templates, and static/.

Templates are looked up in the board's own `templates` folder first, then the built-in
site/templates; everything is autoescaped and every link is relative.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from renderer import jsonfile
from renderer.config import Board
from renderer.errors import PublishError
from renderer.publish import write_atomic
from renderer.state import ChartRecord
from renderer.status import STATUS_FILE, iso, judge

PAGES_DIGEST = "pages.digest"  # in .plotboard/: what the pages showed when last written


def site_dir() -> Path:
    """The built-in site/: inside the installed package, or at the root of a source checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "site"
    return installed if installed.is_dir() else here.parent / "site"


def manifest(board: Board, records: dict[str, ChartRecord], now: float) -> dict[str, Any]:
    """status.json's content, states judged at `now`."""
    charts = []
    for chart in board.charts:
        rec = records.get(chart.name) or ChartRecord()
        charts.append({
            "name": chart.name,
            "title": chart.title,
            "image": f"{chart.name}.png",
            "hash": rec.hash,
            "state": judge(rec.error, rec.rendered_at, chart.stale_after, now),
            "rendered_at": iso(rec.rendered_at),
            "changed_at": iso(rec.changed_at),
            "duration_ms": None if rec.duration_ms is None else round(rec.duration_ms, 1),
            "renders": rec.renders,
            "failures": rec.failures,
            "error": rec.error,
            "stale_after_s": chart.stale_after,
        })
    return {
        "board": {"title": board.title, "generated_at": iso(now), "refresh_s": board.refresh},
        "charts": charts,
    }


@lru_cache(maxsize=8)
def _environment(templates: Path | None):
    import jinja2

    folders = ([str(templates)] if templates else []) + [str(site_dir() / "templates")]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def static_files() -> dict[str, bytes]:
    """The built-in static assets, by name."""
    folder = site_dir() / "static"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}


def index_context(board: Board, man: dict[str, Any], static: dict[str, bytes]) -> dict[str, Any]:
    """What index.html is rendered from."""
    version = hashlib.sha256(b"".join(static.values())).hexdigest()[:10]
    charts = []
    for chart, entry in zip(board.charts, man["charts"]):
        width, height = chart.pixels
        charts.append({
            **entry,
            "description": chart.description,
            "image2x": f"{chart.name}@2x.png" if chart.hidpi else None,
            "svg": f"{chart.name}.svg" if "svg" in chart.formats else None,
            "width": width,
            "height": height,
        })
    return {"board": {**man["board"], "theme": board.theme}, "charts": charts, "static_version": version}


def render_index(board: Board, context: dict[str, Any]) -> str:
    return _environment(board.templates).get_template("index.html").render(**context)


def _template_stamps(board: Board) -> list:
    folders = ([board.templates] if board.templates else []) + [site_dir() / "templates"]
    stamps = []
    for folder in folders:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            st = entry.stat()
            stamps.append([entry.path, st.st_mtime_ns, st.st_size])
    return stamps


def pages_digest(board: Board, context: dict[str, Any]) -> str:
    """Changes when anything the pages show changes, save the time they were generated."""
    board_info = {k: v for k, v in context["board"].items() if k != "generated_at"}
    blob = json.dumps([board_info, context["charts"], context["static_version"], _template_stamps(board)])
    return hashlib.sha256(blob.encode()).hexdigest()


def write_pages(board: Board, records: dict[str, ChartRecord], now: float | None = None) -> dict[str, Any]:
    """Write status.json, index.html and static/ into the output folder; returns the manifest.

    Nothing is written when nothing the pages show has changed (states are judged at `now`,
    so a chart turning stale does rewrite them): a build with nothing to do stays cheap.
    """
    now = time.time() if now is None else now
    man = manifest(board, records, now)
    static = static_files()
    context = index_context(board, man, static)
    digest = pages_digest(board, context)
    digest_file = board.state_dir / PAGES_DIGEST
    try:
        unchanged = digest_file.read_text() == digest and all(
            (board.output / name).is_file() for name in ("index.html", STATUS_FILE, *(f"static/{n}" for n in static))
        )
    except OSError:
        unchanged = False
    if unchanged:
        return man
    try:
        board.output.mkdir(parents=True, exist_ok=True)
        if static:
            if (board.output / "static").is_symlink():
                (board.output / "static").unlink()  # a planted link is replaced, never written through
            (board.output / "static").mkdir(exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {exc.filename or board.output}: {exc.strerror or exc}") from None
    if static:
        for name, data in static.items():
            write_atomic(board.output / "static", name, data)
    write_atomic(board.output, "index.html", render_index(board, context).encode())
    write_atomic(board.output, STATUS_FILE, jsonfile.dumps(man, indent=1).encode())
    try:
        board.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {board.state_dir}: {exc.strerror or exc}") from None
    write_atomic(board.state_dir, PAGES_DIGEST, digest.encode())
    return man
