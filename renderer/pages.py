"""The pages: status.json (the manifest), index.html from jinja2 templates, and static/.

Templates are looked up in the board's own `templates` folder first, then the built-in
site/templates; everything is autoescaped and every link is relative.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from renderer import groups, templating
from renderer import jsonfile
from renderer.config import Board
from renderer.errors import PublishError
from renderer.publish import write_atomic
from renderer.repair import damaged, stamp, stamps
from renderer.state import ChartRecord, waiting_for
from renderer.status import STATUS_FILE, iso, judge
from renderer.templating import site_dir  # noqa: F401 - re-exported
from renderer.windows import window_entries

PAGES_DIGEST = "pages.json"  # in .plotboard/: what the pages showed when last written, and their stamps


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
    in their sections (`groups`: id, name, hash of status/ID.json, summary, charts), besides
    the split manifest's files (`status_files`, by name) that the page polls."""
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
    sections = [{**section, "hash": info["hash"], "summary": groups.summary(section["charts"])}
                for section, info in zip(groups.sections(charts), index["groups"])]
    empty = [f for f in man.get("families", []) if not f["members"]]
    return {"board": {**man["board"], "theme": board.theme, "layout": layout}, "charts": charts,
            "groups": sections, "grouped": any(c.group is not None for c in board.charts),
            "static_version": version, "status_files": files, "empty_families": empty}


def render_index(board: Board, context: dict[str, Any]) -> str:
    """index.html's text; raises templating.TemplateFailed (one line: template file and line)."""
    return templating.render(board.templates, context)


def sample_contexts(board: Board, now: float) -> list[dict[str, Any]]:
    """What the board's templates are tried with when it is loaded: every chart pending, then
    every chart ok, then every chart failed (with an image from before)."""
    static = static_files()
    ok = ChartRecord(hash="0" * 16, rendered_at=now, changed_at=now, duration_ms=1.0, renders=1)
    failed = ChartRecord(hash="0" * 16, rendered_at=now, changed_at=now, duration_ms=1.0, renders=1, failures=1,
                         error="ExampleError: how a failed render shows")
    return [index_context(board, manifest(board, {c.name: rec for c in board.charts if rec}, now), static)
            for rec in (None, ok, failed)]


def check_templates(board: Board) -> str | None:
    """The board's own templates' problem, on one line, or None (see renderer.templating)."""
    if board.templates is None:
        return None
    return templating.check(board.templates, sample_contexts(board, time.time()))


def _template_stamps(board: Board) -> list:
    stamps = []
    for folder in templating.folders(board.templates):
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
    if _written(board).get("digest") == digest and pages_intact(board):
        return man
    index = render_index(board, context).encode()  # before anything is written: a failure keeps the old pages
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
    split = context["status_files"]
    status_dir = _own_folder(board, groups.STATUS_DIR)
    for name, data in split.items():  # the groups first: the index must not name a hash not there yet
        if name != groups.STATUS_INDEX:
            write_atomic(status_dir, name.split("/", 1)[1], data)
    index_json = _distinct_size(split[groups.STATUS_INDEX], _written(board).get("index_sizes"))
    write_atomic(status_dir, groups.STATUS_INDEX.split("/", 1)[1], index_json)
    write_atomic(board.output, "index.html", index)
    # Compact: json's C encoder (indent= takes the pure-Python one, ~6x slower on a big board);
    # `plotboard status --json` prints it indented.
    write_atomic(board.output, STATUS_FILE, jsonfile.dumps(man, separators=(",", ":")).encode())
    _remove_old_groups(board, set(split))
    names = ["index.html", STATUS_FILE, *split, *(f"static/{n}" for n in static)]
    try:
        board.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {board.state_dir}: {exc.strerror or exc}") from None
    record = {"digest": digest, "stamps": stamps(board.output, names),
              "index_sizes": _sizes_this_second(board, _written(board).get("index_sizes"))}
    write_atomic(board.state_dir, PAGES_DIGEST, jsonfile.dumps(record).encode())
    return man


def _distinct_size(data: bytes, used: Any) -> bytes:
    """status/index.json padded with trailing newlines to a size not yet used within this second.

    nginx's ETag and Last-Modified are the mtime in whole seconds and the size: a page that got
    one version would be answered 304 for another of the same size written in the same second,
    and miss the change. `used` is what _sizes_this_second recorded: [second, [sizes]].
    """
    if not (isinstance(used, list) and len(used) == 2 and used[0] == int(time.time())
            and isinstance(used[1], list)):
        return data
    while len(data) in used[1]:
        data += b"\n"
    return data


def _sizes_this_second(board: Board, used: Any) -> list:
    """[mtime second, sizes] of status/index.json as written within that second."""
    s = stamp(board.output / groups.STATUS_INDEX)
    if s is None:
        return []
    second = s[1] // 1_000_000_000
    sizes = used[1] if isinstance(used, list) and len(used) == 2 and used[0] == second and isinstance(used[1], list) else []
    return [second, [*sizes, s[0]]]


def _own_folder(board: Board, name: str) -> Any:
    """OUTPUT/name made a real folder (a planted symlink is replaced, never written through)."""
    folder = board.output / name
    try:
        if folder.is_symlink():
            folder.unlink()
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


def _remove_old_groups(board: Board, current: set[str]) -> None:
    """Delete the status/ID.json of groups that are gone: only names the last write recorded,
    and only of the shape plotboard gives them."""
    for name in _written(board).get("stamps", {}):
        if isinstance(name, str) and name not in current and groups.GROUP_FILE_RE.match(name):
            try:
                (board.output / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise PublishError(f"cannot delete {board.output / name}: {exc.strerror or exc}") from None


def _written(board: Board) -> dict[str, Any]:
    """What write_pages recorded in .plotboard/ when it last wrote the pages ({} if unknown)."""
    try:
        record = json.loads((board.state_dir / PAGES_DIGEST).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("stamps"), dict) else {}


def pages_intact(board: Board) -> bool:
    """Whether index.html, status.json and static/ are all there, as write_pages left them."""
    recorded = _written(board).get("stamps")
    if not recorded:
        return False
    try:
        return not damaged(board.output, recorded, list(recorded))
    except (TypeError, ValueError):  # stamps of another shape: rewrite the pages
        return False
