"""One build pass (`plotboard build`): render what is out of date, publish, write the pages."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from renderer.config import Board, Chart
from renderer.errors import ConfigError, PlotboardError, PublishError
from renderer.executors import require_executor
from renderer.jobs import RenderFailure, RenderJob, RenderOutput
from renderer.pages import write_pages
from renderer.publish import remove_files, remove_temp_files, write_many
from renderer.state import ChartRecord, expand_inputs, fingerprint, load_state, out_of_date, save_state

log = logging.getLogger("plotboard")
LOCK_FILE = "lock"


@dataclass
class BuildResult:
    rendered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    pages_error: str | None = None  # why index.html/status.json could not be written

    @property
    def ok(self) -> bool:
        return not self.failed and self.pages_error is None


@contextmanager
def board_lock(board: Board, who: str = "plotboard build", wait: bool = True) -> Iterator[None]:
    """An OS lock on the board's bookkeeping: one writer at a time, released if its holder dies."""
    board.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(board.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another plotboard"
            if not wait:
                raise PlotboardError(f"{board.path}: the board is locked by {holder}") from None
            log.info("waiting for %s to finish with this board", holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{who} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)


def make_job(board: Board, chart: Chart, inputs: list[str]) -> RenderJob:
    return RenderJob(
        name=chart.name, plot=chart.plot, plot_file=str(chart.plot_file) if chart.plot_file else None,
        root=str(board.root), inputs=tuple(inputs), size=chart.size, dpi=chart.dpi, hidpi=chart.hidpi,
        formats=chart.formats, png_compression=chart.png_compression, theme=board.theme,
        params=dict(chart.params),
    )


def publish_outcome(
    board: Board, record: ChartRecord, current: str, outcome: RenderOutput | RenderFailure,
    trigger: str, now: float,
) -> bool:
    """Publish a render's files and update its record; returns True when it succeeded."""
    if isinstance(outcome, RenderOutput):
        try:
            changed = write_many(board.output, outcome.files)
        except PublishError as exc:
            outcome = RenderFailure(outcome.name, f"PublishError: {exc}", "", outcome.duration_ms)
        else:
            record.files = sorted(set(record.files) | set(outcome.files))
            stale = [f for f in record.files if f not in outcome.files]
            if stale:
                remove_files(board.output, stale)
                record.files = sorted(outcome.files)
            if changed or record.hash != outcome.hash:
                record.changed_at = now
            record.hash = outcome.hash
            record.fingerprint = current
            record.rendered_at = now
            record.duration_ms = outcome.duration_ms
            record.renders += 1
            record.error = None
            record.failed_fingerprint = None
            record.consecutive_failures = 0
            result = "changed" if changed else "unchanged"
            log.info("rendered %s trigger=%s %.1fms %s", outcome.name, trigger, outcome.duration_ms, result,
                     extra={"fields": {"chart": outcome.name, "trigger": trigger,
                                       "duration_ms": round(outcome.duration_ms, 1), "result": result}})
            return True
    record.error = outcome.error
    record.failed_at = now
    record.failed_fingerprint = current
    record.failures += 1
    record.consecutive_failures += 1
    log.error("failed %s trigger=%s %.1fms %s", outcome.name, trigger, outcome.duration_ms, outcome.error,
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
        remove_files(board.output, records.pop(name).files)
        log.info("removed %s", name)
    return removed


def build(board: Board, force: bool = False, only: list[str] | None = None) -> BuildResult:
    """Render every out-of-date chart (all with force; only the named ones with only)."""
    if only:
        unknown = sorted(set(only) - {c.name for c in board.charts})
        if unknown:
            raise ConfigError(board.path, [f"--only: no chart named {', '.join(unknown)}"])
    require_executor(board)
    result = BuildResult()
    with board_lock(board):
        board.output.mkdir(parents=True, exist_ok=True)
        static = board.output / "static"
        for folder in (board.output, board.state_dir) + (() if static.is_symlink() else (static,)):
            remove_temp_files(folder)  # never through a planted static/ link (pages replace it)
        records = load_state(board)
        forget_removed(board, records)
        now = time.time()
        todo = []
        for chart in board.charts:
            if only and chart.name not in only:
                continue
            inputs = expand_inputs(chart)
            current = fingerprint(board, chart, inputs)
            reason = "force" if force else out_of_date(chart, records.get(chart.name), current, now)
            if reason:
                todo.append((chart, inputs, current, reason))
            else:
                result.up_to_date.append(chart.name)
        if todo:
            _render_all(board, records, todo, result)
        save_state(board, records)
        try:
            write_pages(board, records)
        except PublishError as exc:
            log.error("%s", exc)
            result.pages_error = str(exc)
    return result


def _render_all(board: Board, records: dict[str, ChartRecord], todo: list, result: BuildResult) -> None:
    from renderer.executors import make_executor

    executor = make_executor(board, workers=min(board.workers, len(todo)))
    try:
        futures = {executor.submit(make_job(board, chart, inputs)): (chart, current, reason)
                   for chart, inputs, current, reason in todo}
        _warm_pages(board)  # while the workers render: the pages are written right after the last one
        for future in as_completed(futures):
            chart, current, reason = futures[future]
            record = records.setdefault(chart.name, ChartRecord())
            ok = publish_outcome(board, record, current, future.result(), reason, time.time())
            (result.rendered if ok else result.failed).append(chart.name)
    finally:
        executor.close()


def _warm_pages(board: Board) -> None:
    """Import jinja2 and compile the board's template now, off the critical path."""
    from renderer.pages import _environment

    try:
        _environment(board.templates).get_template("index.html")
    except Exception:  # noqa: BLE001 - write_pages reports template problems itself
        pass
