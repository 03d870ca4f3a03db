"""Writing the pages into the output folder: status.json, the split manifest (status/), index.html,
a split board's group pages (groups/ID.html) and static/ — each file only when what it shows
changed, so a change in one group rewrites that group's files and not the whole board's.

What each file showed when last written (a digest) and its stamp are kept in
.plotboard/pages.json; a file missing or altered since is written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from renderer import __version__, jsonfile
from renderer.readfile import BOOKKEEPING_LIMIT, read_file

from renderer.pages import groups

from renderer.pages import templating
from renderer.board.model import Board
from renderer.errors import PublishError
from renderer.pages.model import GROUP_PAGES, Pages, Snapshot, group_contexts, render_group, render_index
from renderer.store.publish import make_folder, write_atomic
from renderer.store.repair import damaged, stamp, stamps
from renderer.store.records import ChartRecord
from renderer.pages.status import STATUS_FILE

PAGES_DIGEST = "pages.json"  # in .plotboard/: what each page showed when last written, and its stamp
PUBLISH_DIGEST = "#publish"  # not a file: what status.json said of publishing
OWN_FILE_RES = (groups.GROUP_FILE_RE, groups.GROUP_PAGE_RE)  # files of these shapes are plotboard's to delete


def write_pages(board: Board, records: dict[str, ChartRecord], now: float | None = None,
                pages: Pages | None = None, dirty: set[str] | None = None, state: bytes | None = None,
                alerts: list | None = None) -> bool:
    """Write what changed of status.json, status/, index.html, groups/ and static/; True when
    something a page reads was written (the daemon then tells open pages: /events).

    `pages` (the daemon keeps one) remembers the last write, and `dirty` names the charts whose
    records changed since: only those are recomputed (None: every chart). Nothing is written
    when nothing the pages show has changed (states are judged at `now`, so a chart turning
    stale does rewrite them). Every page is rendered before anything is written: a template
    failure keeps the old pages. `state`: state.json's bytes as just saved, so that a build
    with nothing to do can tell the pages are current without computing them (pages_current).
    """
    now = time.time() if now is None else now
    pages = pages or Pages()
    snap = pages.update(board, records, now, dirty)
    if alerts is not None:  # status.json's own part: it alone is rewritten when only the alerts' counts change
        snap.status_json = snap.status_json[:-1] + b',"alerts":' + jsonfile.compact(alerts).encode() + b"}"
    follows = None
    if state is not None:
        follows = {"key": pages_key(board, state), "until": min(pages.stale_at.values(), default=None)}
    try:
        return _write(board, pages, snap, follows)
    except BaseException:
        pages.board = None  # what this write took is not on the pages: the next one writes all
        raise


def pages_key(board: Board, state: bytes) -> str:
    """What the pages follow from besides the time: the records (state.json's bytes), the board
    file as loaded, the templates and static files, and plotboard itself."""
    static = [[p.name, *(stamp(p) or [])] for p in sorted((templating.site_dir() / "static").glob("*"))]
    return _digest(_hash(state), _board_digest(board), str(board.output), _template_stamps(board), static,
                   __version__)


_board_seen: list[Any] = [None, ""]  # the last board (boards never change once loaded) and its digest


def _board_digest(board: Board) -> str:
    """A digest of the board file as loaded, made once per board: the daemon asks at every write."""
    if _board_seen[0] is not board:
        _board_seen[:] = [board, _hash(jsonfile.dumps(board.data, sort_keys=True, default=str).encode())]
    return _board_seen[1]


def pages_current(board: Board, state: bytes, now: float) -> bool:
    """Whether the pages as last written show these records (state.json's bytes) and this board
    at `now`: nothing changed since, no chart has turned stale, every page file is intact."""
    written = _written(board)
    follows = written.get("follows")
    if not isinstance(follows, dict) or follows.get("key") != pages_key(board, state):
        return False
    until = follows.get("until")
    if until is not None and not (isinstance(until, (int, float)) and now < until):
        return False
    return len(_intact(board, written)) == len(written["stamps"])


def _write(board: Board, pages: Pages, snap: Snapshot, follows: dict[str, Any] | None = None) -> bool:
    context, split = snap.context, snap.status_files
    rebuilt = {f"{groups.STATUS_DIR}/{g}.json" for g in snap.changed_groups}  # every group's after a full update
    written = _written(board)
    before = written.get("digests", {}) if isinstance(written.get("digests"), dict) else {}
    intact = set(_intact(board, written))
    common = _common_digest(board, context)
    digests = dict(before) if not snap.full else {}
    # Every card's part, digested again only when a card changed: a write for status.json's
    # `alerts` alone (an alert's counts) costs no pass over a big board's cards.
    pages.shows = pages.shows or _digest(_index_shows(context))
    digests["index.html"] = _digest(common, pages.shows)
    views = {"index.html": context} | group_contexts(context)
    for name, view in views.items():
        if name != "index.html" and (view["group"]["id"] in snap.changed_groups or name not in digests):
            digests[name] = _digest(common, [view["group"]["hash"], _cards(view["group"]),
                                             [p and [p["id"], p["name"]] for p in (view["prev"], view["next"], view["first"])]])
    stale = [name for name in views if before.get(name) != digests[name] or name not in intact]
    for name in split:
        if name != groups.STATUS_INDEX and (name in rebuilt or name not in digests):
            digests[name] = _hash(split[name])
    changed = [n for n in split if n != groups.STATUS_INDEX and before.get(n) != digests[n]]
    digests[STATUS_FILE] = _hash(snap.status_json[snap.status_json.rfind(b',"alerts":'):] if b',"alerts":' in snap.status_json else b"")
    if before.get(STATUS_FILE, _hash(b"")) != digests[STATUS_FILE]:
        changed.append(STATUS_FILE)
    digests[PUBLISH_DIGEST] = _digest(context.get("publish"))  # status.json's `publish`
    if before.get(PUBLISH_DIGEST) != digests[PUBLISH_DIGEST] and STATUS_FILE not in changed:
        changed.append(STATUS_FILE)
    if not stale and not changed and all(n in intact for n in (*split, STATUS_FILE)):
        if follows is not None and written.get("follows") != follows:  # records changed, not what shows
            write_atomic(board.state_dir, PAGES_DIGEST, jsonfile.dumps({**written, "follows": follows}).encode(),
                         durable=True)
        return False
    texts = {}
    for name in stale:
        base = "" if name == "index.html" else "../"
        view = {**views[name], "cards_html": pages.cards_html(board, base)}
        texts[name] = (render_index(board, view) if name == "index.html" else render_group(board, view)).encode()
    _make_folders(board, pages.static)
    for name, data in pages.static.items():
        write_atomic(board.output / "static", name, data)
    status_dir = _own_folder(board, groups.STATUS_DIR)
    for name, data in split.items():  # the groups first: the index must not name a hash not there yet
        if name != groups.STATUS_INDEX and (name not in intact or before.get(name) != digests[name]):
            write_atomic(status_dir, name.split("/", 1)[1], data)
    index_sizes = _write_index(status_dir, split[groups.STATUS_INDEX], written.get("index_sizes"))
    if context["split"]:
        pages_dir = _own_folder(board, GROUP_PAGES)
        for name in stale:
            if name != "index.html":
                write_atomic(pages_dir, name.split("/", 1)[1], texts[name])
    if "index.html" in texts:
        write_atomic(board.output, "index.html", texts["index.html"])
    # `plotboard status --json` prints it indented.
    write_atomic(board.output, STATUS_FILE, snap.status_json)
    current = {"index.html", STATUS_FILE, *split, *views, *(f"static/{n}" for n in pages.static)}
    _remove_old(board, written, current)
    make_folder(board.state_dir)
    record = {"digests": {n: d for n, d in digests.items() if n in current or n == PUBLISH_DIGEST},
              "stamps": stamps(board.output, sorted(current)),
              "index_sizes": index_sizes, "follows": follows}
    write_atomic(board.state_dir, PAGES_DIGEST, jsonfile.dumps(record).encode(), durable=True)
    return True


def _common_digest(board: Board, context: dict[str, Any]) -> list:
    """What every page shows besides its own part: the board (not the time it was generated),
    the static files' version and the templates' stamps."""
    board_info = {k: v for k, v in context["board"].items() if k != "generated_at"}
    return [board_info, context["static_version"], context["split"], _template_stamps(board)]


def _index_shows(context: dict[str, Any]) -> Any:
    """index.html's own part: every card, or (split) each group's summary and chart names."""
    if not context["split"]:
        return [context["charts"], context["empty_families"]]
    return [[g["id"], g["name"], g["summary"], g["names"], g["empty_families"]] for g in context["groups"]]


def _cards(section: dict[str, Any]) -> list:
    """What a group page shows of its charts besides their manifest entries (which its hash covers)."""
    return [[c["name"], c["description"], c["width"], c["height"], c["image2x"], c["svg"]] for c in section["charts"]]


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _template_stamps(board: Board) -> list:
    found = []
    for folder in templating.folders(board.templates):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            st = entry.stat()
            found.append([entry.path, st.st_mtime_ns, st.st_size])
    return found


def _make_folders(board: Board, static: dict[str, bytes]) -> None:
    make_folder(board.output)
    if static:
        _own_folder(board, "static")


def _own_folder(board: Board, name: str) -> Path:
    """OUTPUT/name made a real folder (a planted symlink is replaced, never written through)."""
    folder = board.output / name
    try:
        if folder.is_symlink():
            folder.unlink()
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


def _write_index(status_dir: Path, data: bytes, used: Any) -> list:
    """Write status/index.json, padded with trailing newlines to a size not yet used within the
    second of its mtime; returns [that second, the sizes written within it] to record.

    nginx's ETag and Last-Modified are the mtime in whole seconds and the size: a page that got
    one version would be answered 304 for another of the same size written in the same second,
    and miss the change. `used` is what the last write recorded: [second, [sizes]]. The second
    is the file's mtime, read back after the write, never this host's clock: on NFS the server
    stamps the file, and a host whose clock is off (behind or ahead) would compare seconds that
    never match and stop padding altogether.
    """
    name = groups.STATUS_INDEX.split("/", 1)[1]
    while True:
        rewritten = write_atomic(status_dir, name, data)
        s = stamp(status_dir / name)
        if s is None:
            return []
        second = s[1] // 1_000_000_000
        sizes = used[1] if (isinstance(used, list) and len(used) == 2 and used[0] == second
                            and isinstance(used[1], list)) else []
        if s[0] not in sizes:
            return [second, [*sizes, s[0]]]
        if not rewritten:  # the same bytes as before: no new version to tell apart
            return [second, sizes]
        data += b"\n" * (max(x for x in sizes if isinstance(x, int)) + 1 - len(data))


def _remove_old(board: Board, written: dict[str, Any], current: set[str]) -> None:
    """Delete the status/ID.json and groups/ID.html of groups that are gone: only names the
    last write recorded, and only of the shapes plotboard gives them."""
    for name in written.get("stamps", {}):
        if isinstance(name, str) and name not in current and any(r.match(name) for r in OWN_FILE_RES):
            try:
                (board.output / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise PublishError(f"cannot delete {board.output / name}: {exc.strerror or exc}") from None


def _written(board: Board) -> dict[str, Any]:
    """What write_pages recorded in .plotboard/ when it last wrote the pages ({} if unknown)."""
    try:
        record = jsonfile.loads(read_file(board.state_dir / PAGES_DIGEST, BOOKKEEPING_LIMIT))
    except (OSError, ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("stamps"), dict) else {}


def _intact(board: Board, written: dict[str, Any]) -> list[str]:
    """The files the last write recorded that are still as it left them."""
    recorded = written.get("stamps")
    if not recorded:
        return []
    try:
        bad = set(damaged(board.output, recorded, list(recorded)))
    except (TypeError, ValueError):  # stamps of another shape: rewrite the pages
        return []
    return [n for n in recorded if n not in bad]


def pages_intact(board: Board) -> bool:
    """Whether every page file is there, as write_pages left them."""
    written = _written(board)
    recorded = written.get("stamps")
    return bool(recorded) and len(_intact(board, written)) == len(recorded)
