"""The entry point that runs in a worker process; importable without matplotlib."""

from __future__ import annotations

import dataclasses
import time
import traceback

from renderer import boardmods
from renderer.jobs import RenderFailure, RenderJob, RenderOutput, describe


def run_job(job: RenderJob) -> RenderOutput | RenderFailure:
    """Render one job, turning any exception (MemoryError, SystemExit too) into a RenderFailure."""
    started = time.perf_counter()
    if job.inputs_problem:
        return RenderFailure(job.name, f"TooManyInputs: {job.inputs_problem}")
    with boardmods.tracking(job.root) as used:
        try:
            from renderer.render import render

            outcome: RenderOutput | RenderFailure = render(job)
        except BaseException as exc:  # noqa: BLE001 - a plot function may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exc(limit=-8)
            outcome = RenderFailure(job.name, describe(exc), tb, (time.perf_counter() - started) * 1000)
    return dataclasses.replace(outcome, modules=used)
