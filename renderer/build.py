"""One build pass (`plotboard build`): render what is out of date, publish, write the pages."""

from __future__ import annotations

import logging
import sys
import time
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from renderer.alerts.service import send_due, shown
from renderer.board.triggers import Trigger
from renderer.board.model import Board
from renderer.daemon.client import Abandoned, NotTheDaemon, StillRendering, ask_daemon
from renderer.errors import ConfigError, PlotboardError, PublishError
from renderer.executors.factory import require_executor
from renderer.store.lock import BUILD, BUILD_WAIT, RUN, BoardBusy, Holder, board_lock
from renderer.pages.write import pages_current, write_pages
from renderer.publish.build_pass import publish_build
from renderer.publish.client import require_publisher
from renderer.daemon.progress import Progress
from renderer.store.records import ChartRecord, save_state
from renderer.store.fingerprints import expand_inputs, fingerprint
from renderer.store.workspace import make_job, prepare, publish_outcome, why_render

log = logging.getLogger("plotboard")

DAEMON_GRACE = 60.0  # beyond render_timeout: how long a daemon rendering a build's charts may go quiet


@dataclass
class BuildResult:
    rendered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    pages_error: str | None = None  # why index.html/status.json could not be written
    publish_error: str | None = None  # why the store ([publish]) is not in line with the output folder
    by: str | None = None  # "plotboard run (pid N)" when the running daemon did the work
    durations: list[float] = field(default_factory=list)  # seconds each render of this build took

    @property
    def ok(self) -> bool:
        return not self.failed and self.pages_error is None and self.publish_error is None


def build(board: Board, force: bool = False, only: list[str] | None = None) -> BuildResult:
    """Render every out-of-date chart (all with force; only the named ones with only)."""
    if only:
        unknown = sorted(set(only) - {c.name for c in board.charts})
        if unknown:
            raise ConfigError(board.path, [f"--only: no chart named {', '.join(unknown)}"])
    require_executor(board)
    require_publisher(board)
    try:
        with board_lock(board, BUILD, wait=BUILD_WAIT) as _:
            result = _build(board, force, only)
    except BoardBusy as exc:
        if exc.holder.who != RUN:
            raise
        result = _by_daemon(board, exc.holder, force, only)
    if not only:  # a family's member left out (named when the board was loaded) is a chart in error
        result.failed.extend(f.name for f in board.failed if f.name not in result.failed)
    return result


def _by_daemon(board: Board, holder: Holder, force: bool, only: list[str] | None) -> BuildResult:
    """Have the running daemon render what this build would, and report what it did."""
    try:
        answer = ask_daemon(board.path, force, only, holder.pid, patience=board.render_timeout + DAEMON_GRACE)
    except NotTheDaemon as exc:
        raise PlotboardError(f"{board.path}: {holder} owns this board, but {exc}; stop that process, "
                             f"then restart plotboard run") from None
    except (StillRendering, Abandoned) as exc:
        raise PlotboardError(f"{board.path}: {holder} owns this board and keeps it current; {exc}") from None
    except OSError as exc:
        raise PlotboardError(f"{board.path}: {holder} owns this board and keeps it current; it did not take "
                             f"this build's request ({exc.strerror or exc})") from None
    if "error" in answer:
        raise PlotboardError(f"{board.path}: {holder}: {answer['error']}")
    result = BuildResult(by=str(holder))
    for key in ("rendered", "failed", "up_to_date"):
        value = answer.get(key)
        if isinstance(value, list):
            getattr(result, key).extend(str(v) for v in value)
    return result


def _build(board: Board, force: bool, only: list[str] | None) -> BuildResult:
    result = BuildResult()
    records = prepare(board)
    now = time.time()
    todo = []
    for chart in board.charts:
        if only and chart.name not in only and chart.window_of not in only:
            continue
        inputs = expand_inputs(chart)
        current = fingerprint(board, chart, inputs)
        record = records.get(chart.name)
        before = record.fingerprint if record is not None else None
        reason = Trigger.FORCE if force else why_render(board, chart, record, current, now)
        if record is not None and record.fingerprint != before:  # its racy inputs settled (fingerprints.holds)
            records.loaded = None
        if reason:
            todo.append((chart, inputs, current, reason))
        else:
            result.up_to_date.append(chart.name)
    if todo:
        _render_all(board, records, todo, result)
    # Nothing rendered or removed: state.json holds these records already (its encoding is most
    # of what a build with nothing to do would write).
    state = records.loaded if not todo and records.loaded is not None else save_state(board, records)
    try:
        if todo or not pages_current(board, state, time.time()):
            write_pages(board, records, state=state, alerts=shown(board))
        if send_due(board, records):  # the alerts' counts changed: status.json says so
            write_pages(board, records, state=state, alerts=shown(board))
    except PublishError as exc:
        log.error("%s", exc)
        result.pages_error = str(exc)
    result.publish_error = publish_build(board, records, state)
    return result


def _render_all(board: Board, records: dict[str, ChartRecord], todo: list, result: BuildResult) -> None:
    from renderer.executors.factory import make_executor

    progress = Progress(len(todo)) if Progress.wanted() else None
    with make_executor(board, workers=min(board.workers, len(todo))) as executor, _showing(progress):
        futures = {executor.submit(make_job(board, chart, inputs)): (chart, current, reason)
                   for chart, inputs, current, reason in todo}
        _warm_pages(board)  # while the workers render: the pages are written right after the last one
        level = logging.DEBUG if progress else logging.INFO  # a terminal gets the progress line instead
        for future in as_completed(futures):
            chart, current, reason = futures[future]
            outcome = future.result()
            result.durations.append(outcome.duration_ms / 1000)
            ok = publish_outcome(board, records, current, outcome, reason, time.time(), level)
            (result.rendered if ok else result.failed).append(chart.name)
            if progress:
                progress.advance(ok)


@contextmanager
def _showing(progress: Progress | None) -> Iterator[None]:
    """While rendering: log lines clear the progress line first; at the end it is cleared."""
    handlers = [h for h in log.handlers if getattr(h, "stream", None) is sys.stderr] if progress else []
    for handler in handlers:
        handler.addFilter(progress)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(progress)
        if progress:
            progress.clear()


def _warm_pages(board: Board) -> None:
    """Import jinja2 and compile the board's template now, off the critical path."""
    from renderer.pages.templating import ENTRY, environment

    try:
        environment(board.templates).get_template(ENTRY)
    except Exception:  # noqa: BLE001 - write_pages reports template problems itself
        pass
