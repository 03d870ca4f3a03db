"""`plotboard export`: the board as published, as one self-contained HTML file.

It reads the output folder only (status.json and the 1x PNGs it names), never renders and
never takes the board's lock, so it works while `run` runs. States are judged at the export's
moment as `plotboard status` judges them (renderer.pages.status). Every image is inlined as a
`data:image/png;base64` URI, the page's CSS as a <style>; the page has no script and no URL to
anything (the built-in template site/templates/export.html only, never the board's own
templates). Images are read one at a time, as the template reaches them, and the page is
streamed out, so memory holds one image, not the whole file. The file is written to a hidden
temporary file next to its target and moved into place, never half-written.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from renderer.board.model import Board
from renderer.errors import ConfigError, PlotboardError
from renderer.pages import groups, status, templating
from renderer.readfile import RefusedFile, not_regular, read_file
from renderer.text import iso

log = logging.getLogger("plotboard")

TEMPLATE = "export.html"
DEFAULT_OUTPUT = "board.html"
WARN_SIZE = 25_000_000  # bytes: mail servers commonly refuse messages over 25 MB
IMAGE_LIMIT = 256 * 1024 * 1024  # bytes of one image read back (PIXEL_LIMIT's noisiest PNG fits)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
_IMAGE_NAME = re.compile(r"[^/\\\x00.][^/\\\x00]*\.png\Z")  # a file plotboard writes in the output folder
_CSS_URL = re.compile(r"url\(\s*(?![\"']?data:)[^)]*\)", re.IGNORECASE)


class ExportUsage(PlotboardError):
    """`-o` names something that cannot be replaced by a file (a folder, a device)."""

    exit_code = 2


@dataclass
class Inlined:
    """An image as the page shows it: its data: URI, or why there is none."""

    uri: Any = None
    why: str | None = None


def inline(output: Path, name: Any) -> Inlined:
    """The output folder's image `name` as a data: URI, or why it is missing (not a plain file
    name, not there, not a regular file, not a whole PNG)."""
    from markupsafe import Markup

    if not isinstance(name, str) or not _IMAGE_NAME.match(name):
        return Inlined(why=f"image missing: {name!r} is not an image plotboard writes")
    try:
        data = read_file(output / name, IMAGE_LIMIT, follow_symlinks=False)
    except RefusedFile as exc:
        return Inlined(why=f"image missing: {name}: {exc.strerror}")
    except (OSError, ValueError) as exc:  # ValueError: a name that is no file name here (surrogates)
        return Inlined(why=f"image missing: {name}: {getattr(exc, 'strerror', None) or exc}")
    if not data.startswith(PNG_SIGNATURE) or not data.endswith(PNG_END):
        return Inlined(why=f"image missing: {name} is not a whole PNG")
    return Inlined(uri=Markup("data:image/png;base64," + base64.b64encode(data).decode("ascii")))


def ago(seconds: float) -> str:
    """An age as the page shows it: '12 s ago', '3 min ago', '2 h ago', '4 d ago'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def cards(board: Board, manifest: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Each published chart's card: its entry (state judged at `now`), description and age."""
    described = {c.name: c.description for c in board.charts}
    pixels = {c.name: c.pixels for c in board.charts}
    out = []
    for entry in manifest["charts"]:
        rendered = status.parse_iso(entry.get("rendered_at"))
        out.append({
            "name": entry["name"], "title": _text(entry.get("title")) or entry["name"],
            "group": _text(entry.get("group")), "state": entry["state"], "error": _text(entry.get("error")),
            "image": entry.get("image"), "description": described.get(entry["name"], ""),
            "rendered_at": entry.get("rendered_at"), "age": None if rendered is None else ago(now - rendered),
            "waiting_for": [w for w in _list(entry.get("waiting_for")) if isinstance(w, str)],
            "warning": _text(entry.get("warning")),
            "windows": [w for w in _list(entry.get("windows")) if isinstance(w, dict)],
            "width": pixels.get(entry["name"], (None, None))[0], "height": pixels.get(entry["name"], (None, None))[1],
        })
    return out


def selected(board: Board, manifest: dict[str, Any], only: list[str] | None) -> dict[str, Any]:
    """The manifest restricted to the charts `--only` names, as `build --only` takes names: a
    chart of the board (a window's internal chart selects the chart it belongs to) or one the
    manifest holds; ConfigError (exit 2) naming the unknown ones."""
    if not only:
        return manifest
    parent = {c.name: c.window_of or c.name for c in board.charts}
    published = {e["name"] for e in manifest["charts"]}
    unknown = sorted(set(only) - set(parent) - published)
    if unknown:
        raise ConfigError(board.path, [f"--only: no chart named {', '.join(unknown)}"])
    wanted = {parent.get(name, name) for name in only}
    return {**manifest, "charts": [e for e in manifest["charts"] if e["name"] in wanted], "families": []}


def context(board: Board, manifest: dict[str, Any], now: float) -> dict[str, Any]:
    """What export.html is rendered with."""
    from markupsafe import Markup

    shown = cards(board, manifest, now)
    sections = groups.sections(shown)
    for section in sections:
        section["summary"] = groups.summary(section["charts"])
        section["width"] = max((c["width"] or 0 for c in section["charts"]), default=0)
    empty = [f for f in _list(manifest.get("families")) if isinstance(f, dict) and not f.get("members") and not f.get("failed")]
    for f in empty:  # in its group's section (one of its own when no chart is in it)
        group = f.get("group") if isinstance(f.get("group"), str) else None
        section = next((s for s in sections if s["name"] == group), None)
        if section is None:
            section = {"id": groups.unique_id(group, {s["id"] for s in sections}) if group else groups.UNGROUPED,
                       "name": group, "charts": [], "summary": groups.summary([]), "width": 0}
            sections.append(section)
        section.setdefault("empty_families", []).append(f)
    info = manifest.get("board") if isinstance(manifest.get("board"), dict) else {}
    generated = _text(info.get("generated_at"))
    generated_t = status.parse_iso(generated) if generated and status._is_time(generated) else None
    css = _CSS_URL.sub("none", (templating.site_dir() / "static" / "board.css").read_text())
    return {
        "board": {"title": _text(info.get("title")) or board.title, "theme": board.theme,
                  "generated_at": generated, "generated_age": None if generated_t is None else ago(now - generated_t)},
        "exported_at": iso(now), "groups": sections, "grouped": any(s["name"] is not None for s in sections),
        "empty_families": empty, "counts": groups.summary(shown)["counts"],
        "css": Markup(css.replace("</", "<\\/")), "inline": lambda name: inline(board.output, name),
    }


def read_published(board: Board) -> dict[str, Any]:
    """status.json of the board's output folder, checked; PlotboardError (exit 1) when nothing
    was published yet or it cannot be read."""
    where = board.output / status.STATUS_FILE
    if not os.path.lexists(where):
        raise PlotboardError(f"{where}: nothing published yet; run plotboard build first")
    try:
        return status.read_manifest(board.output)
    except (OSError, ValueError) as exc:
        raise PlotboardError(f"cannot export: {exc}") from None


def export(board: Board, target: str, only: list[str] | None, now: float) -> int:
    """Write the export to `target` ('-': stdout); returns its size in bytes."""
    manifest = selected(board, read_published(board), only)
    manifest = status.mark_missing(status.rejudge(manifest, now), board.output)
    chunks = templating.environment(None).get_template(TEMPLATE).generate(**context(board, manifest, now))
    if target == "-":
        try:
            size = _stream(chunks, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # `| head`: the reader left; nothing more to say to it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise PlotboardError("export: stdout was closed before the end of the export") from None
    else:
        size = write_file(Path(target), chunks)
    if size > WARN_SIZE:
        log.warning("%s is %.1f MB, over %d MB: many mail servers and trackers refuse that; "
                    "export fewer charts with --only NAME...", "the export" if target == "-" else target,
                    size / 1e6, WARN_SIZE // 1_000_000)
    return size


def _stream(chunks: Any, out: IO[bytes]) -> int:
    size = 0
    for chunk in chunks:
        data = chunk.encode("utf-8", "replace")
        out.write(data)
        size += len(data)
    return size


def write_file(path: Path, chunks: Any) -> int:
    """Stream the chunks into a hidden temporary file next to `path`, then move it into place."""
    try:
        odd = not_regular(path)
    except OSError as exc:
        raise PlotboardError(f"cannot write {path}: {exc.strerror}") from None
    if odd:
        raise ExportUsage(f"-o {path}: not a regular file; give a file name, or -o - for stdout")
    temp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(4)}.tmp")  # a name's limit: 255 bytes
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "wb") as out:
            size = _stream(chunks, out)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise PlotboardError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return size
