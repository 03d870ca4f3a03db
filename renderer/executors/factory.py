"""The executor a board asks for: local worker processes (renderer.executors.pool) or a Dask
cluster (renderer.executors.dask_client, imported only when asked for: Dask is an extra)."""

from __future__ import annotations

from renderer.board.model import Board
from renderer.executors.base import Executor


def require_executor(board: Board) -> None:
    """Fail early, before anything is written, when the board's executor cannot be used."""
    if board.executor == "dask":
        from renderer.executors.dask_client import require_distributed

        require_distributed()


def make_executor(board: Board, workers: int | None = None) -> Executor:
    """The executor the board asks for: local worker processes, or a Dask cluster."""
    if board.executor == "dask":
        from renderer.executors.dask_client import DaskExecutor

        return DaskExecutor(board.scheduler, board.render_timeout)
    from renderer.executors.pool import RenderPool

    return RenderPool(workers or board.workers, board.render_timeout, stage_in=str(board.output))
