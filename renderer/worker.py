"""The entry point that runs in a worker process; importable without matplotlib."""

from __future__ import annotations

import time
import traceback

from renderer.durations import format_size
from renderer.jobs import RenderFailure, RenderJob, RenderOutput, describe
from renderer.limits import memory_limit


def run_job(job: RenderJob) -> RenderOutput | RenderFailure:
    """Render one job, turning any exception (MemoryError, SystemExit too) into a RenderFailure."""
    started = time.perf_counter()
    try:
        from renderer.render import render

        with memory_limit(job.max_memory):
            return render(job)
    except BaseException as exc:  # noqa: BLE001 - a plot function may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exc(limit=-8)
        error = describe(exc)
        if isinstance(exc, MemoryError) and job.max_memory is not None:
            error = (f"MemoryError: the render needed more memory than max_memory = "
                     f"{format_size(job.max_memory)} allows" + (f" ({exc})" if str(exc) else ""))
        return RenderFailure(job.name, error, tb, (time.perf_counter() - started) * 1000)
