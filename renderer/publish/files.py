"""Which files of the output folder are mirrored, in what order, with which headers.

Only the kinds of file plotboard writes there (renderer.pages, renderer.store): images, the
pages, the manifests, static/; never a hidden temporary file, a symlink or anything else.

Order keeps every reader of the store consistent: images and static/ first, then the
manifests (each group's status/ID.json before status/index.json, which names its hash), then
the pages (groups/ID.html before index.html). Objects are stored under their own names, so
each gets `Cache-Control: no-cache` (revalidated, as nginx serves `cpu.png` without `?v=`).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

IMAGE_RE = re.compile(r"[a-z0-9][a-z0-9_.@-]*\.(?:png|svg)\Z")
SUB_RE = re.compile(r"[^./][^/]*\Z")  # a visible file's name in static/, status/, groups/
CACHE_CONTROL = "no-cache"
CONTENT_TYPES = {
    ".png": "image/png", ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8",
    ".json": "application/json", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
}
FOLDERS = ("static", "status", "groups")
# Phases, sent one after the other: 0 images and static/; 1 a group's manifest; 2 status/index.json;
# 3 status.json; 4 a group's page; 5 index.html.
IMAGES, PAGES_FROM = 0, 1
LAST_PHASE = 5


def phase(rel: str) -> int | None:
    """When `rel` (a path relative to the output folder) is sent; None: it is not mirrored."""
    if "/" not in rel:
        if rel == "index.html":
            return 5
        if rel == "status.json":
            return 3
        return IMAGES if IMAGE_RE.match(rel) else None
    folder, name = rel.split("/", 1)
    if folder not in FOLDERS or not SUB_RE.match(name):
        return None
    if folder == "static":
        return IMAGES
    if folder == "status":
        return (2 if name == "index.json" else 1) if name.endswith(".json") else None
    return 4 if name.endswith(".html") else None


def content_type(rel: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(rel)[1], "application/octet-stream")


Stat = tuple[int, int, int]  # size, mtime_ns, inode: a file replaced (os.replace) is a new inode


def scan(output: Path, pages: bool) -> dict[str, Stat]:
    """The mirrored files (pages and manifests with `pages`, else images and static/) that are
    regular files now, with their stats; symlinks are never followed. The pages' scan looks at
    index.html, status.json, status/ and groups/ only, not at the folder's images."""
    found: dict[str, Stat] = {}
    if pages:
        for rel in ("index.html", "status.json"):
            try:
                st = os.stat(output / rel, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
    for folder in (("status", "groups") if pages else ("", "static")):
        try:
            entries = list(os.scandir(output / folder if folder else output))
        except OSError:
            continue
        for entry in entries:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            at = phase(rel)
            if at is None or (at >= PAGES_FROM) != pages:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


def names(data: bytes, rel: str) -> bool:
    """Whether a page or manifest's bytes name `rel` (as a link, or a manifest's "image")."""
    return re.search(rb"(?<![A-Za-z0-9_.@-])" + re.escape(rel.encode()) + rb"(?![A-Za-z0-9_.@-])", data) is not None
