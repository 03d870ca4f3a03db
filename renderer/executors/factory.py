"""The executor a board asks for: local worker processes (renderer.executors.pool) or a Dask
cluster (renderer.executors.dask_client, imported only when asked for: Dask is an extra)."""

from __future__ import annotations

from renderer.board.model import Board
from renderer.executors.base import Executor
from renderer.threads import Died


def require_executor(board: Board) -> None:
    """Fail early, before anything is written, when the board's executor cannot be used."""
    if board.executor == "dask":
        from renderer.executors.dask_client import require_distributed

        require_distributed()


def make_executor(board: Board, workers: int | None = None, on_thread_death: Died | None = None) -> Executor:
    """The executor the board asks for: local worker processes, or a Dask cluster.

    `on_thread_death` is told the name of an executor's thread that dies (renderer.threads);
    without it, such a death fails every render, and the caller goes on."""
    if board.executor == "dask":
        from renderer.executors.dask_client import DaskExecutor

        return DaskExecutor(board.scheduler, board.render_timeout, on_thread_death=on_thread_death)
    from renderer.executors.pool import RenderPool

    return RenderPool(workers or board.workers, board.render_timeout, stage_in=str(board.output),
                      on_thread_death=on_thread_death)
