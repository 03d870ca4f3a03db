"""Executors: failure kinds, with the wording status.json shows."""

from __future__ import annotations

import pickle
import signal
import sys
from concurrent.futures import Future, TimeoutError
from dataclasses import replace
from pathlib import Path

from renderer.executors import process_died, timed_out, worker_died
from renderer.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput
from renderer.pool import PRELOAD, _outcome

PLOTS = '''
def line(fig, inputs, **params):
    fig.add_subplot().plot([1, 3, 2])
'''


def job(root: Path, name: str = "c") -> RenderJob:
    return RenderJob(name=name, plot="plots:line", plot_file=str(root / "plots.py"), root=str(root), inputs=(),
                     size=(2.0, 1.0), dpi=40, hidpi=False, formats=("png",), png_compression=1, theme="light")


def test_a_failure_keeps_its_kind_across_processes_and_defaults_to_the_plot():
    assert RenderFailure("c", "ValueError: no").kind is FailureKind.PLOT
    died = process_died("c", -signal.SIGKILL)
    assert pickle.loads(pickle.dumps(died)) == died


def test_failures_read_as_before():
    cases = [
        (timed_out("c", 3), FailureKind.TIMEOUT, "RenderTimeout: render took longer than 3s and was killed"),
        (timed_out("c", 0.5), FailureKind.TIMEOUT, "RenderTimeout: render took longer than 0.5s and was killed"),
        (process_died("c", -signal.SIGSEGV), FailureKind.WORKER_DIED, "WorkerDied: the render process was killed by SIGSEGV"),
        (process_died("c", 3), FailureKind.WORKER_DIED, "WorkerDied: the render process exited with status 3"),
        (process_died("c", None), FailureKind.WORKER_DIED, "WorkerDied: the render process exited with status None"),
        (worker_died("c", "the render process failed to start"), FailureKind.WORKER_DIED,
         "WorkerDied: the render process failed to start"),
    ]
    for failure, kind, error in cases:
        assert (failure.name, failure.kind, failure.error) == ("c", kind, error)


def test_the_local_pool_gives_timeouts_and_dead_workers_their_kind(tmp_path):
    from pebble import ProcessExpired

    outcomes = []
    for exc in (TimeoutError(), ProcessExpired("gone", code=-signal.SIGSEGV), RuntimeError("odd")):
        future: Future = Future()
        future.set_exception(exc)
        outcomes.append(_outcome(job(tmp_path), future, 2.0))
    assert [(o.kind, o.error) for o in outcomes] == [
        (FailureKind.TIMEOUT, "RenderTimeout: render took longer than 2s and was killed"),
        (FailureKind.WORKER_DIED, "WorkerDied: the render process was killed by SIGSEGV"),
        (FailureKind.PLOT, "RuntimeError: odd"),
    ]


def test_every_module_a_local_worker_needs_at_first_task_is_preloaded():
    # What unpickling a task imports: the initializer's module and the task's, with their imports.
    needed = {"renderer.pool", "renderer.worker", "renderer.executors", "renderer.jobs"}
    preloaded = set(PRELOAD)
    for name in PRELOAD:
        if name.startswith("renderer."):
            __import__(name)
            preloaded |= {m for m in sys.modules if m.startswith("renderer.")}
    assert needed <= preloaded


def test_the_render_process_beside_a_dask_worker_reports_kinds(tmp_path):
    from renderer.dask_remote import _close_idle, pack, run_remote

    (tmp_path / "plots.py").write_text(PLOTS + '''
import os, signal, time

def killer(fig, inputs, **params):
    os.kill(os.getpid(), signal.SIGKILL)

def hang(fig, inputs, **params):
    time.sleep(60)
''')

    def remote(plot: str, timeout: float = 60.0) -> RenderOutput | RenderFailure:
        j = replace(job(tmp_path, name=plot), plot=f"plots:{plot}")
        return pickle.loads(run_remote(pickle.dumps(pack(j)), j.name, timeout))

    try:
        assert isinstance(remote("line"), RenderOutput)
        killed = remote("killer")
        assert (killed.kind, killed.error) == (FailureKind.WORKER_DIED,
                                               "WorkerDied: the render process was killed by SIGKILL")
        hung = remote("hang", timeout=1.0)
        assert (hung.kind, hung.error) == (FailureKind.TIMEOUT, "RenderTimeout: render took longer than 1s and was killed")
    finally:
        _close_idle()
