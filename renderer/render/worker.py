"""What runs in a render process: `run_job` (one render, any exception turned into a failure,
under the chart's memory limit) and `serve`, the local worker's loop; importable without
matplotlib."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection

from renderer.render import modules as boardmods
from renderer.text import format_size
from renderer.render.jobs import RenderFailure, RenderJob, RenderOutput, describe
from renderer.render.limits import memory_limit
from renderer.render.files import stage


def run_job(job: RenderJob) -> RenderOutput | RenderFailure:
    """Render one job, turning any exception (MemoryError, SystemExit too) into a RenderFailure;
    either way the outcome names the board's modules the render used (renderer.render.modules)."""
    started = time.perf_counter()
    if job.inputs_problem:
        return RenderFailure(job.name, f"TooManyInputs: {job.inputs_problem}")
    with boardmods.tracking(job.root) as used:
        try:
            from renderer.render.draw import render

            with memory_limit(job.max_memory):
                outcome: RenderOutput | RenderFailure = render(job)
        except BaseException as exc:  # noqa: BLE001 - a plot function may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exc(limit=-8)
            error = describe(exc)
            if isinstance(exc, MemoryError) and job.max_memory is not None:
                error = (f"MemoryError: the render needed more memory than max_memory = "
                         f"{format_size(job.max_memory)} allows" + (f" ({exc})" if str(exc) else ""))
            outcome = RenderFailure(job.name, error, tb, (time.perf_counter() - started) * 1000)
    return dataclasses.replace(outcome, modules=used)


def out_of_memory(outcome: RenderOutput | RenderFailure) -> bool:
    """A render that ran out of memory: its process may be left in a poor state; replace it."""
    return isinstance(outcome, RenderFailure) and outcome.error.startswith("MemoryError")


def serve(conn: Connection, owner: int, max_tasks: int, stage_in: str | None = None) -> None:
    """A local worker: render the jobs the pool sends, at most `max_tasks`, then leave.

    Each job comes as a RenderJob (None: leave now) and goes back as (outcome, leaving). The
    processes a render started are killed before its outcome is sent. With `stage_in` (the
    output folder), a render's files are written there as hidden temporary files and only their
    names go back (renderer.render.files.stage): the daemon renames them into place. The worker leaves
    with os._exit, whatever threads a plot left running, so it is always reclaimable."""
    from renderer.render.contain import die_with_owner, kill_descendants, lead_own_group

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    lead_own_group()
    die_with_owner(owner)
    try:
        for done in range(1, max_tasks + 1):
            job = conn.recv()
            if job is None:
                break
            outcome = run_job(job)
            kill_descendants()
            if stage_in is not None and isinstance(outcome, RenderOutput) and job.end is None:  # not on demand
                outcome = dataclasses.replace(outcome, files=stage(stage_in, outcome.files))
            leaving = done == max_tasks or out_of_memory(outcome)
            conn.send((outcome, leaving))
            if leaving:
                break
    except (EOFError, OSError):
        pass  # the pool is gone
    finally:
        kill_descendants()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(0)
