"""Executors: the factory, failure kinds with the wording status.json shows, and executors as
context managers that close once however often they are closed."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import IN_CI, cli_env, free_port

from renderer.executors.base import process_died, timed_out, worker_died
from renderer.executors.factory import make_executor
from renderer.render.jobs import FailureKind, RenderFailure, RenderJob, RenderOutput
from renderer.executors.pool import RenderPool
from renderer.executors.workers import PRELOAD
from renderer.render.files import Staged
from renderer.store.publish import write_many

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
        (process_died("c", -signal.SIGKILL), FailureKind.WORKER_DIED,
         "WorkerDied: the render process was killed by SIGKILL (perhaps out of memory?)"),
        (process_died("c", 0), FailureKind.WORKER_DIED, "WorkerDied: the render process exited with status 0"),
        (process_died("c", 3), FailureKind.WORKER_DIED, "WorkerDied: the render process exited with status 3"),
        (process_died("c", None), FailureKind.WORKER_DIED, "WorkerDied: the render process exited with status None"),
        (worker_died("c", "the render process failed to start"), FailureKind.WORKER_DIED,
         "WorkerDied: the render process failed to start"),
    ]
    for failure, kind, error in cases:
        assert (failure.name, failure.kind, failure.error) == ("c", kind, error)


def test_every_module_a_local_worker_needs_at_first_task_is_preloaded():
    # What unpickling a task imports: the initializer's module and the task's, with their imports.
    needed = {"renderer.executors.pool", "renderer.render.worker", "renderer.executors.base", "renderer.render.jobs"}
    preloaded = set(PRELOAD)
    for name in PRELOAD:
        if name.startswith("renderer."):
            __import__(name)
            preloaded |= {m for m in sys.modules if m.startswith("renderer.")}
    assert needed <= preloaded


def test_the_local_pool_is_a_context_manager_and_closes_once(tmp_path):
    (tmp_path / "plots.py").write_text(PLOTS)
    board = SimpleNamespace(executor="local", workers=1, render_timeout=60.0, scheduler="", output=tmp_path / "out")
    with make_executor(board) as pool:
        assert isinstance(pool, RenderPool)
        outcome = pool.submit(job(tmp_path)).result(timeout=60)  # no output folder: the bytes come back
        assert isinstance(outcome, RenderOutput) and outcome.files["c.png"].startswith(b"\x89PNG")
        board.output.mkdir()
        staged = pool.submit(job(tmp_path)).result(timeout=60)
    # The worker wrote the image next to its target; publishing only renames it.
    temp = staged.files["c.png"]
    assert isinstance(temp, Staged) and (board.output / temp.temp).read_bytes() == outcome.files["c.png"]
    assert write_many(board.output, staged.files) == ["c.png"]
    assert os.listdir(board.output) == ["c.png"] and (board.output / "c.png").read_bytes() == outcome.files["c.png"]
    pool.close()
    pool.close(wait=False)
    with pytest.raises(RuntimeError):
        pool.submit(job(tmp_path))


def test_a_pool_whose_dispatcher_dies_tells_its_owner_and_fails_every_render(tmp_path, monkeypatch):
    (tmp_path / "plots.py").write_text(PLOTS)
    original = RenderPool._step

    def broken_step(self) -> None:  # fault injection: the dispatcher has no known bug to trigger
        monkeypatch.setattr(RenderPool, "_step", original)  # once is enough: a dead thread stays dead
        raise RuntimeError("a bug in the dispatcher")

    monkeypatch.setattr(RenderPool, "_step", broken_step)
    deaths: list[str] = []
    with RenderPool(2, timeout=60.0, on_thread_death=deaths.append) as pool:
        outcomes = [f.result(timeout=60) for f in [pool.submit(job(tmp_path, name)) for name in "ab"]]
        later = pool.submit(job(tmp_path, "c"))
        assert later.done()  # at once: nothing would ever render it
    assert deaths == ["plotboard-pool"]
    why = "WorkerDied: the render pool's dispatcher thread died (RuntimeError: a bug in the dispatcher)"
    assert [(o.name, o.kind, o.error) for o in outcomes + [later.result()]] == [
        (name, FailureKind.WORKER_DIED, why) for name in "abc"]


DASK_UNREACHABLE = """
import sys
from renderer.executors.dask_client import DaskExecutor
from renderer.render.jobs import RenderJob

job = RenderJob(name="c", plot="plots:line", plot_file=None, root=".", inputs=(), size=(2.0, 1.0), dpi=40,
                hidpi=False, formats=("png",), png_compression=1, theme="light")
with DaskExecutor(sys.argv[1], 5.0, connect_timeout=0.5) as executor:
    outcome = executor.submit(job).result(timeout=10)
print(outcome.kind.name)
print(outcome.error)
print(executor._monitor.is_alive())
executor.close()
executor.close(wait=False)
"""


def test_the_dask_executor_is_a_context_manager_and_an_absent_scheduler_fails_renders_as_unavailable():
    if not IN_CI:  # CI installs the dask extra: there a missing distributed fails the test
        pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    # In a process of its own: distributed's event loop thread outlives every client.
    result = subprocess.run([sys.executable, "-c", DASK_UNREACHABLE, address], env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    kind, error, monitor_alive = result.stdout.splitlines()
    assert kind == "UNAVAILABLE" and monitor_alive == "False"
    assert error.startswith(f"SchedulerUnavailable: cannot reach the Dask scheduler at {address}")


def test_the_render_process_beside_a_dask_worker_reports_kinds(tmp_path):
    from renderer.executors.dask_remote import _close_idle, pack, run_remote

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
                                               "WorkerDied: the render process was killed by SIGKILL (perhaps out of memory?)")
        hung = remote("hang", timeout=1.0)
        assert (hung.kind, hung.error) == (FailureKind.TIMEOUT, "RenderTimeout: render took longer than 1s and was killed")
    finally:
        _close_idle()


def test_the_dispatcher_pauses_for_half_of_what_the_least_stocked_worker_holds():
    """While every worker renders with jobs waiting, results gather for a moment; never so long
    that a worker holding fewer jobs than the others runs dry meanwhile."""
    from collections import deque

    from renderer.executors.pool import MAX_PAUSE, PIPELINE

    pool = RenderPool(2, timeout=10)
    try:
        pool._render_s = 0.01

        def holding(*counts: int) -> float:
            pool._workers = [SimpleNamespace(tasks=deque(range(c))) for c in counts]
            return pool._pause()

        assert holding(PIPELINE, PIPELINE) == pytest.approx(0.01 * (PIPELINE - 1) / 2)
        assert holding(PIPELINE, 2) == pytest.approx(0.005)  # the least stocked holds one in reserve
        assert holding(PIPELINE, 1) == 0.0  # nothing in reserve: no pause
        assert holding(PIPELINE) == 0.0  # a worker still to start
        pool._render_s = 1.0
        assert holding(PIPELINE, PIPELINE) == MAX_PAUSE
    finally:
        pool._workers = []
        pool.close()
