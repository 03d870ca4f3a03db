"""The daemon's executors: the current one, and those a reload replaced, each closed once no
render of its own is in flight."""

from __future__ import annotations

import logging
from typing import Iterable

from renderer.board.model import Board
from renderer.threads import Died

log = logging.getLogger("plotboard")


class ExecutorSet:
    def __init__(self, died: Died | None = None) -> None:
        self.current = None
        self._retired: list = []
        self.died = died  # told when a thread an executor depends on dies

    def use(self, board: Board) -> None:
        """Make the executor `board` asks for and use it for new renders."""
        from renderer.executors.factory import make_executor

        self.replace(make_executor(board, on_thread_death=self.died))

    def replace(self, executor) -> None:
        """Use `executor` for new renders; the one before finishes what it has."""
        if self.current is not None:
            self._retired.append(self.current)
        self.current = executor

    def close_idle(self, busy: Iterable[object]) -> None:
        """Close retired executors that run none of `busy` (the executors of renders in flight)."""
        running = {id(e) for e in busy}
        for executor in list(self._retired):
            if id(executor) not in running:
                self._retired.remove(executor)
                executor.close(wait=True)

    def close_all(self, wait: bool) -> None:
        """With wait, let renders in flight finish; errors are logged, closing goes on."""
        for executor in [self.current, *self._retired]:
            if executor is not None:
                try:
                    executor.close(wait=wait)
                except Exception as exc:  # noqa: BLE001 - shutting down must go on
                    log.error("stopping the render pool: %s", exc)
        self._retired.clear()
