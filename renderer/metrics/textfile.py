"""`plotboard build --metrics-file PATH`: the registry written for node_exporter's textfile
collector, which reads every `*.prom` file of its folder at each scrape.

The file is replaced whole (a hidden temporary file in the same folder, then os.replace), so
the collector never reads half of one; it is written at every build, changed or not, so its
mtime (node_textfile_mtime_seconds) tells when the last build ran; and it is 0644 whatever the
umask, since node_exporter runs as a user of its own. The path is checked before anything
renders: a mistake is one line and exit status 2.
"""

from __future__ import annotations

import os
from pathlib import Path

from renderer.board.model import Board
from renderer.errors import PlotboardError
from renderer.readfile import not_regular
from renderer.render.files import unlink_quietly, write_temp

MODE = 0o644


class BadMetricsFile(PlotboardError):
    """--metrics-file names a place the file cannot be written to."""

    exit_code = 2


def check_path(text: str, board: Board) -> Path:
    """The metrics file's path, made absolute; BadMetricsFile (one line) when it cannot be written
    there: its folder missing or not writable, a folder at the path, or a place plotboard owns."""
    path = Path(os.path.abspath(text))
    where = f"--metrics-file {text}"
    if not path.name or text.endswith(os.sep):
        raise BadMetricsFile(f"{where}: expected a file's path, not a folder's")
    for owned, what in ((board.output, "the output folder (it would be published)"),
                        (board.state_dir, "plotboard's bookkeeping folder")):
        if path.is_relative_to(os.path.abspath(owned)):
            raise BadMetricsFile(f"{where}: inside {what}; write it elsewhere, "
                                 "e.g. node_exporter's textfile folder")
    try:
        odd = not_regular(path)
    except OSError as exc:
        raise BadMetricsFile(f"{where}: {exc.strerror or exc}") from None
    if odd:
        raise BadMetricsFile(f"{where}: not a regular file")
    try:
        unlink_quietly(write_temp(path.parent, path.name, b"", durable=False))  # proves the folder takes it
    except OSError as exc:
        raise BadMetricsFile(f"{where}: cannot write in {path.parent}: {exc.strerror or exc}") from None
    return path


def write(path: Path, data: bytes) -> None:
    """Replace the file at `path` with `data`, whole; PlotboardError (one line) on failure."""
    try:
        temp = write_temp(path.parent, path.name, data, durable=True)
        try:
            os.chmod(temp, MODE)
            os.replace(temp, path)
        except OSError:
            unlink_quietly(temp)
            raise
    except OSError as exc:
        raise PlotboardError(f"cannot write the metrics file {path}: {exc.strerror or exc}") from None


def write_build(path: Path, board: Board, durations: list[float]) -> None:
    """A build's metrics: the records as the build left them (read back: a running daemon may
    have done the work), and the durations of the renders this build made."""
    from renderer.alerts.service import recorded_triples
    from renderer.metrics.board import BoardMetrics
    from renderer.store.records import load_state

    metrics = BoardMetrics(alerts=lambda: recorded_triples(board))
    for seconds in durations:
        metrics.observe(seconds)
    metrics.load(board, load_state(board), counts=True)
    write(path, metrics.exposition())
