"""Fingerprints: what a chart's image follows from (its inputs' bytes, its settings, its plot
module and the board modules it used, the library versions), digested, and whether a chart is
out of date against its record."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from functools import lru_cache
from pathlib import Path

from renderer import __version__
from renderer.readfile import digest_file
from renderer.board.model import Board, Chart, settings_digest
from renderer.board.durations import next_due
from renderer.board.inputs import TooManyInputs, expand
from renderer.board.triggers import Trigger
from renderer.board.windows import limited
from renderer.render import digests
from renderer.store import module_use
from renderer.store.records import ChartRecord

_SORTED_JSON = json.JSONEncoder(sort_keys=True).encode  # json.dumps(..., sort_keys=True), its encoder made once

class Inputs(list):
    """A chart's input files (renderer.board.inputs.expand); `problem` says why there are none when
    the patterns went past the limits: the chart's render then fails with that message.
    `stats`: each file's (size, mtime_ns) as the expansion saw them, which the fingerprint reads."""

    problem: str | None = None
    stats: dict[str, tuple[int, int]] | None = None


def expand_inputs(chart: Chart) -> Inputs:
    """The chart's input files that exist, globs expanded, each real file once, sorted; never
    a file of the output folder or `.plotboard/`."""
    stats: dict[str, tuple[int, int]] = {}
    try:
        inputs = Inputs(expand(chart.inputs, chart.excluded, stats))
    except TooManyInputs as exc:
        inputs = Inputs()
        inputs.problem = str(exc)
        return inputs
    inputs.stats = stats
    return inputs


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions that change the output's bytes, read without importing matplotlib.

    Read from the name of each package's .dist-info folder next to it (what pip installs),
    which costs one directory listing; importlib.metadata (~25 ms to import, ~10 ms a
    look-up) only when that folder is not there.
    """
    import importlib.util

    versions = {"plotboard": __version__}
    listings: dict[str, list[str]] = {}
    for dist, module in (("matplotlib", "matplotlib"), ("numpy", "numpy"), ("pillow", "PIL")):
        found = None
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            folder = os.path.dirname(os.path.dirname(spec.origin))
            if folder not in listings:
                try:
                    listings[folder] = os.listdir(folder)
                except OSError:
                    listings[folder] = []
            prefix = dist.lower() + "-"
            for name in listings[folder]:
                if name.endswith(".dist-info") and name.lower().startswith(prefix):
                    found = name[len(prefix):-len(".dist-info")]
                    break
        if found is None:
            from importlib.metadata import PackageNotFoundError, version

            try:
                found = version(dist)
            except PackageNotFoundError:
                found = "none"
        versions[dist] = found
    return versions


def file_digest(path: Path | None) -> str | None:
    return None if path is None else digests.file_digest(str(path))


class Fingerprint(str):
    """A fingerprint as fingerprint() computed it just now, with what `same` needs to check a
    recorded one against it: each input's [path, size, mtime_ns] and the digests of the bytes
    it read meanwhile (racy inputs)."""

    files: list  # set by fingerprint(), with contents
    contents: dict[str, str]


def fingerprint(board: Board, chart: Chart, inputs: list[str]) -> Fingerprint:
    """Changes whenever anything that could change the chart's image changes: 'BASE.MODULES',
    MODULES a digest of the board modules its last render used (renderer.render.modules), as they
    are now. BASE ends in '~STAMP~DIGEST' when an input was racy (see `same`)."""
    used = module_use.used_by(str(board.root), chart.name)
    base, files, contents = _base(board, chart, inputs)
    made = Fingerprint(base + "." + _modules_digest({path: digests.file_digest(path) for path in used}))
    made.files, made.contents = files, contents
    return made


# An input whose mtime is less than this before the moment its stat was taken (or after it) is
# "racy", as git's index calls it: a rewrite within the same tick of the file system's clock, of
# the same size, would leave its stat as it is. Its bytes' digest goes with the fingerprint then,
# and are compared until a check finds the file this much older than its stat's moment: from then
# on any write changes its mtime. 2 s covers the coarsest clocks (FAT's 2 s, NFS servers').
RACY_NS = 2_000_000_000
RACY_READ_LIMIT = 64 * 1024 * 1024  # bytes of a racy input digested: a same-size rewrite beyond them goes unseen
_RACY = re.compile(r"~([0-9]+)~([0-9a-f]+)")
clock_ns = time.time_ns  # the moment a fingerprint's stats were taken (tests pass in another)
# A racy input's digest is reused for RECENT_S while the file's stat is unchanged, so that the
# charts sharing one file (a board's 10,000 fingerprints, all at once) read it once. A rewrite
# within that half second is seen by the next check after it: only a check past the window
# settles a racy input, and it reads the file afresh.
RECENT_S = 0.5
monotonic = time.monotonic
_recent: dict[tuple, tuple[float, str]] = {}  # (path, stat) -> (when read, digest)


def _racy_digest(path: str, reuse: bool = True) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "unreadable"
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    now = monotonic()
    known = _recent.get(key)
    if reuse and known is not None and now - known[0] < RECENT_S:
        return known[1]
    try:
        digest = digest_file(path, RACY_READ_LIMIT)
    except (OSError, ValueError):
        return "unreadable"
    if len(_recent) >= 4096:
        for old in [k for k, (at, _) in _recent.items() if now - at >= RECENT_S]:
            del _recent[old]
        if len(_recent) >= 4096:
            _recent.clear()
    _recent[key] = (now, digest)
    return digest


def _racy_part(files: list, stamp_ms: int, contents: dict[str, str], reuse: bool = True) -> str:
    """'~STAMP~DIGEST' over the bytes of the inputs racy at `stamp_ms` (epoch ms), or ''.
    `contents`: digests known already; without `reuse`, the others are read afresh."""
    edge = stamp_ms * 1_000_000 - RACY_NS
    racy = [path for path, _size, mtime in files if mtime is not None and mtime > edge]
    if not racy:
        return ""
    for path in racy:
        if path not in contents:
            contents[path] = _racy_digest(path, reuse)
    data = _SORTED_JSON([[path, contents[path]] for path in racy])
    return f"~{stamp_ms}~{hashlib.sha256(data.encode()).hexdigest()[:32]}"


def same(recorded: str | None, current: str) -> bool:
    """Whether the chart, as `current` (fingerprint()) sees it now, is what `recorded` was taken
    of: the same but for when each was taken, and, if `recorded` had racy inputs, their bytes
    the same now (read again, unless `current` has just read them)."""
    if recorded is None:
        return False
    if recorded == current:
        return True
    racy = _RACY.search(recorded)
    if _RACY.sub("", recorded, count=1) != _RACY.sub("", current, count=1):
        return False
    if racy is None:
        return True  # nothing was racy: a write since would have changed a size or an mtime
    files = getattr(current, "files", None)
    if files is None:
        return False
    # What `current` digested (racy now: no settling on it) is used; the rest is read afresh.
    return _racy_part(files, int(racy.group(1)), current.contents, reuse=False) == racy.group(0)


def holds(record: ChartRecord, current: str) -> bool:
    """`same(record.fingerprint, current)`; once true of a record whose racy inputs are no
    longer racy, the record takes `current` (settled: its stats alone tell from now on)."""
    if not same(record.fingerprint, current):
        return False
    if record.fingerprint != current and _RACY.search(current) is None:
        record.fingerprint = str(current)
    return True


def racy(record: ChartRecord | None) -> bool:
    """Whether the record's fingerprint has inputs whose bytes a check must read."""
    return record is not None and "~" in (record.fingerprint or "")


def with_modules(current: str, modules: dict[str, str] | None) -> str:
    """The fingerprint a render had: `current` with the board modules it reported using, as
    they were when it ran (an edit made during the render still makes the chart out of date)."""
    if modules is None:
        return str(current)  # a plain str: a record keeps no Fingerprint's files
    return current.partition(".")[0] + "." + _modules_digest(modules)


def _modules_digest(modules: dict[str, str | None]) -> str:
    return _digest_of_modules(tuple(sorted(modules.items())))


@lru_cache(maxsize=1024)
def _digest_of_modules(modules: tuple[tuple[str, str | None], ...]) -> str:
    return hashlib.sha256(json.dumps(modules).encode()).hexdigest()[:32]  # a tuple dumps as the list did


_settings: dict[int, tuple[Chart, str]] = {}  # id(chart) -> (chart, settings_digest): a chart never changes


def _settings_digest(board: Board, chart: Chart) -> str:
    known = _settings.get(id(chart))
    if known is None or known[0] is not chart:
        if len(_settings) > 2 * len(board.charts) + 1024:  # charts of boards a reload replaced
            _settings.clear()
        known = _settings[id(chart)] = (chart, settings_digest(chart))
    return known[1]


def _base(board: Board, chart: Chart, inputs: list[str]) -> tuple[str, list, dict[str, str]]:
    """'DEFINITION-DATA[~STAMP~RACY]': a digest of what defines the chart (its settings, the
    theme, its plot module, library versions), then one of its input files as they are now,
    and one of its racy inputs' bytes (_racy_part); with the inputs' stats and those digests."""
    seen = getattr(inputs, "stats", None) or {}  # taken by expand_inputs, just before
    stats = []
    for p in inputs:
        known = seen.get(p)
        if known is None:
            try:
                st = os.stat(p)
                known = (st.st_size, st.st_mtime_ns)
            except OSError:
                known = (None, None)
        stats.append([p, *known])
    data = _SORTED_JSON({"inputs": stats, "inputs_problem": getattr(inputs, "problem", None)})
    contents: dict[str, str] = {}
    racy = _racy_part(stats, clock_ns() // 1_000_000, contents)  # the moment is after every stat
    return (_definition_digest(_settings_digest(board, chart), board.theme, file_digest(chart.plot_file)) + "-"
            + hashlib.sha256(data.encode()).hexdigest()[:32] + racy), stats, contents


@lru_cache(maxsize=65536)
def _definition_digest(settings: str, theme: str, module: str | None) -> str:
    """What defines a chart besides its inputs, with the libraries' versions (fixed while this process runs)."""
    definition = _SORTED_JSON({"settings": settings, "theme": theme, "module": module, "versions": library_versions()})
    return hashlib.sha256(definition.encode()).hexdigest()[:32]


def redefined(old: str | None, current: str) -> bool:
    """Whether two fingerprints differ in what defines the chart (settings, theme, code), not
    only in its input files: a new definition re-renders every time window at once."""
    def code(fp: str) -> tuple[str, str]:
        base, _, modules = fp.partition(".")
        return base.partition("-")[0], modules

    return old is None or code(old) != code(current)


def out_of_date(chart: Chart, record: ChartRecord | None, current: str, now: float, limit: bool = True) -> Trigger | None:
    """Why the chart must be rendered (new, failed, redefined, changed, schedule), or None.

    With `limit`, a later time window inside its interval is not out of date for a change of
    its inputs or its schedule (renderer.board.windows.limited); a new definition always is."""
    if record is None or record.rendered_at is None:
        return Trigger.NEW
    if record.error is not None:
        return Trigger.FAILED
    reason = None
    if not holds(record, current):
        reason = Trigger.REDEFINED if redefined(record.fingerprint, current) else Trigger.CHANGED
    else:
        due = next_due(chart, record.rendered_at)
        if due is not None and due <= now:
            reason = Trigger.SCHEDULE
    if limit and limited(chart, record.rendered_at, reason, now):
        return None
    return reason
