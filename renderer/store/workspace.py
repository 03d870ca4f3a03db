"""What `build` and `run` share: a board prepared for work (under its lock, renderer.store.lock),
jobs made from charts, and render outcomes published into the output folder and the charts'
records."""

from __future__ import annotations

import logging
import os

from renderer.store import history, module_use
from renderer.board.model import Board, Chart
from renderer.board.triggers import Trigger
from renderer.errors import PublishError
from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput
from renderer.text import one_line
from renderer.store.publish import remove_files, remove_temp_files, write_many
from renderer.store.repair import damaged, stamps
from renderer.store.records import ChartRecord, Records, hash_of, load_state
from renderer.store.fingerprints import out_of_date, with_modules
from renderer.board.windows import ignores_window, report_ignored

log = logging.getLogger("plotboard")

# The output folder's folders the pages write (renderer.pages): the CSS and JS, status/ID.json, groups/ID.html.
PAGE_FOLDERS = ("static", "status", "groups")


def prepare(board: Board) -> Records:
    """Ready the output folder and bookkeeping for a pass (under the lock); returns the records.

    Removes temporary files a killed writer left, then the records and files of charts that
    are no longer in the board.
    """
    board.output.mkdir(parents=True, exist_ok=True)
    own = [board.output / name for name in PAGE_FOLDERS]
    for folder in [board.output, board.state_dir] + [f for f in own if not f.is_symlink()]:
        for name in remove_temp_files(folder):  # never through a planted link (pages replace it)
            log.info("removed leftover temporary file %s", folder / name)
    records = load_state(board)
    removed = forget_removed(board, records)
    if history.check_all(board, records) or removed:  # past images deleted meanwhile are dropped
        records.loaded = None
    return records


def why_render(board: Board, chart: Chart, record: ChartRecord | None, current: str, now: float,
               limit: bool = True) -> Trigger | None:
    """Why the chart must render now (renderer.store.fingerprints.out_of_date, or repair when a file it
    published is missing or altered), or None."""
    return out_of_date(chart, record, current, now, limit) or (Trigger.REPAIR if needs_repair(board, record) else None)


def needs_repair(board: Board, record: ChartRecord | None) -> list[str]:
    """The chart's published files that are missing or altered (none if it never published)."""
    if record is None or record.rendered_at is None:
        return []
    return damaged(board.output, record.stamps, record.files)


def make_job(board: Board, chart: Chart, inputs: list[str]) -> RenderJob:
    return RenderJob(
        name=chart.name, plot=chart.plot, plot_file=str(chart.plot_file) if chart.plot_file else None,
        root=str(board.root), inputs=tuple(inputs), size=chart.size, dpi=chart.dpi, hidpi=chart.hidpi,
        formats=chart.formats, png_compression=chart.png_compression, theme=board.theme,
        layout=chart.layout, params=dict(chart.params), max_memory=chart.max_memory,
        inputs_problem=_inputs_problem(board, chart, inputs),
        window=chart.window.seconds if chart.window else None, window_name=chart.window.name if chart.window else None,
        aliases=(f"{chart.name}.{chart.window.name}",) if chart.window and chart.window_of is None else (),
        zoom=chart.zoom,
    )


def _inputs_problem(board: Board, chart: Chart, inputs: list[str]) -> str | None:
    problem = getattr(inputs, "problem", None)
    return f"{board.path.name}: charts ({chart.name}).inputs: {problem}" if problem else None


def publish_outcome(
    board: Board, records: dict[str, ChartRecord], current: str, outcome: RenderOutput | RenderFailure,
    trigger: Trigger, now: float, level: int = logging.INFO,
) -> bool:
    """Publish a render's files and update its record; returns True when it succeeded.

    A success is logged at `level` (the daemon logs them at DEBUG and sums them up instead),
    a failure always as an error; a render that makes every time window's image the same is
    reported once (renderer.board.windows)."""
    before = ignores_window(board, hash_of(records), outcome.name)
    ok = _publish(board, records.setdefault(outcome.name, ChartRecord()), current, outcome, trigger, now, level)
    report_ignored(board, hash_of(records), outcome.name, before)
    return ok


def _publish(
    board: Board, record: ChartRecord, current: str, outcome: RenderOutput | RenderFailure,
    trigger: Trigger, now: float, level: int,
) -> bool:
    current = with_modules(current, outcome.modules)
    if outcome.modules is not None:
        record.modules = dict(outcome.modules)
        module_use.remember(str(board.root), outcome.name, outcome.modules)
    if isinstance(outcome, RenderOutput):
        held = history.hold(board, outcome.name, record, outcome.files, now)  # the image it replaces
        try:
            if not os.path.isdir(board.output):  # deleted meanwhile: published afresh
                board.output.mkdir(parents=True, exist_ok=True)
            changed = write_many(board.output, outcome.files)
        except (PublishError, OSError) as exc:
            history.settle(board, outcome.name, record, held, [])
            outcome = RenderFailure(outcome.name, f"PublishError: {exc}", "", outcome.duration_ms, FailureKind.PUBLISH)
        else:
            record.files = sorted(set(record.files) | set(outcome.files))
            stale = [f for f in record.files if f not in outcome.files]
            if stale:
                remove_files(board.output, stale)
                record.files = sorted(outcome.files)
            record.stamps = stamps(board.output, record.files)
            history.settle(board, outcome.name, record, held, changed)
            if changed or record.hash != outcome.hash:
                record.changed_at = now
            record.hash = outcome.hash
            record.fingerprint = current
            record.rendered_at = now
            record.duration_ms = outcome.duration_ms
            record.axes = outcome.axes
            record.renders += 1
            record.error = None
            record.failed_fingerprint = None
            record.consecutive_failures = 0
            result = "changed" if changed else "unchanged"
            log.log(level, "rendered %s trigger=%s %.1fms %s", outcome.name, trigger, outcome.duration_ms, result,
                     extra={"fields": {"chart": outcome.name, "trigger": trigger,
                                       "duration_ms": round(outcome.duration_ms, 1), "result": result}})
            return True
    record.error = outcome.error
    record.failed_at = now
    record.failed_fingerprint = current
    record.failures += 1
    record.consecutive_failures += 1
    log.error("failed %s trigger=%s %.1fms %s", outcome.name, trigger, outcome.duration_ms, one_line(outcome.error),
              extra={"fields": {"chart": outcome.name, "trigger": trigger, "duration_ms": round(outcome.duration_ms, 1),
                                "result": "failed", "error": outcome.error}})
    if outcome.traceback:
        log.debug("%s", outcome.traceback.rstrip())
    return False


def forget_removed(board: Board, records: dict[str, ChartRecord]) -> list[str]:
    """Drop charts no longer in the board: their records and the files they published."""
    names = {c.name for c in board.charts}
    removed = [name for name in records if name not in names]
    for name in removed:
        record = records.pop(name)
        remove_files(board.output, record.files)
        history.forget(board, name, record)
        module_use.forget(str(board.root), name)
        log.info("removed %s", name)
    return removed
