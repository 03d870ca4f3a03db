"""Containment (issue 12, items 1 and 7): whatever a plot leaves behind (threads, children,
grandchildren) never stops rendering or outlives its render; a worker's death is reported at
once with how it died."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from conftest import Board, chart, fast_board, wait_for

from renderer.render.jobs import FailureKind, RenderJob, RenderOutput
from renderer.executors import pool as pool_module
from renderer.executors.pool import RenderPool

PLOTS = '''
import os, signal, subprocess, threading, time
from pathlib import Path

def line(fig, inputs, **params):
    fig.add_subplot().plot([1, 3, 2])

def threads(fig, inputs, **params):
    threading.Thread(target=time.sleep, args=(3600,)).start()  # never joined, not a daemon thread
    if params.get("pids"):
        with open(params["pids"], "a") as f:
            f.write(f"{os.getpid()}\\n")
    line(fig, inputs)

def forks(fig, inputs, **params):
    """A child, and a grandchild that leaves the process group and its parent (a daemon's double fork)."""
    child = subprocess.Popen(["sleep", "3600"])
    pids = [child.pid]
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            time.sleep(3600)
        os._exit(0)
    os.close(w)
    pids.append(int(os.read(r, 100)))
    Path(params["pids"]).write_text(" ".join(map(str, pids)))
    if params.get("hang"):
        time.sleep(3600)
    line(fig, inputs)

def exit0(fig, inputs, **params):
    os._exit(0)

def kill9(fig, inputs, **params):
    os.kill(os.getpid(), signal.SIGKILL)

'''


def job(root: Path, plot: str, **params) -> RenderJob:
    return RenderJob(name=plot, plot=f"plots:{plot}", plot_file=str(root / "plots.py"), root=str(root), inputs=(),
                     size=(2.0, 1.0), dpi=40, hidpi=False, formats=("png",), png_compression=1, theme="light",
                     params=params)


@pytest.fixture
def plots(tmp_path: Path) -> Path:
    (tmp_path / "plots.py").write_text(PLOTS)
    return tmp_path


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- item 1: threads and processes a plot leaves ------------------------------------------------


def test_a_worker_whose_plot_leaves_a_thread_leaves_by_itself_when_recycled_and_rendering_goes_on(plots, monkeypatch):
    """A worker past max_tasks must leave although a plot left a thread running (its exit must
    not join it): here the pool would never kill a worker that does not leave (LEAVE_GRACE is
    an hour), so each recycled worker's process must end by itself while the pool runs on."""
    monkeypatch.setattr(pool_module, "LEAVE_GRACE", 3600.0)
    pids_file = plots / "pids"
    pool = RenderPool(1, 60.0, max_tasks=3)
    try:
        for i in range(8):  # crosses two recyclings of the only worker
            outcome = pool.submit(job(plots, "threads", pids=str(pids_file))).result(timeout=60)
            assert isinstance(outcome, RenderOutput), f"render {i}: {outcome}"
        pids = [int(p) for p in pids_file.read_text().split()]
        workers = list(dict.fromkeys(pids))
        assert pids == [w for w in workers for _ in range(3)][:8], f"renders by worker pid: {pids}"
        recycled = workers[:2]
        wait_for(lambda: all(gone(p) for p in recycled), 60, "the recycled workers to leave by themselves")
    except BaseException:
        for pid in set(pids_file.read_text().split()) if pids_file.exists() else ():
            try:  # a worker that did not leave: the pool would wait an hour for it
                psutil.Process(int(pid)).kill()
            except psutil.NoSuchProcess:
                pass
        raise
    finally:
        monkeypatch.undo()
        pool.close()


def test_a_renders_children_and_grandchildren_never_outlive_it(plots):
    with RenderPool(1, 60.0) as pool:
        outcome = pool.submit(job(plots, "forks", pids=str(plots / "pids"))).result(timeout=60)
        assert isinstance(outcome, RenderOutput), outcome
        pids = [int(p) for p in (plots / "pids").read_text().split()]
        assert [p for p in pids if not gone(p)] == [], "the render's descendants outlived it"
        assert isinstance(pool.submit(job(plots, "line")).result(timeout=60), RenderOutput)


def test_a_hung_render_is_killed_with_its_children_and_grandchildren(plots):
    with RenderPool(1, 3.0) as pool:
        outcome = pool.submit(job(plots, "forks", pids=str(plots / "pids"), hang=True)).result(timeout=60)
        assert (outcome.kind, outcome.error) == (FailureKind.TIMEOUT,
                                                 "RenderTimeout: render took longer than 3s and was killed")
        pids = [int(p) for p in (plots / "pids").read_text().split()]
        wait_for(lambda: all(gone(p) for p in pids), 30, "the hung render's descendants to die")
        assert isinstance(pool.submit(job(plots, "line")).result(timeout=60), RenderOutput)


THREADS_BOARD = """
[board]
workers = 1
render_timeout = "20s"

[defaults]
size = [1, 1]
dpi = 20
hidpi = false
plot = "plots:threads"
"""


def test_build_of_130_charts_whose_plot_leaves_a_thread_finishes(tmp_path):
    board = Board(tmp_path / "b").write(THREADS_BOARD + "".join(f'\n[[charts]]\nname = "c{i}"\n' for i in range(130)),
                                        plots=PLOTS)
    result = board.cli("build", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "130 rendered, 0 failed" in result.stderr
    assert {c["state"] for c in board.status()["charts"]} == {"ok"}


def test_the_daemon_renders_on_across_recycling_when_plots_leave_threads(tmp_path, daemons):
    charts = "".join(f'\n[[charts]]\nname = "t{i}"\nevery = "100ms"\n' for i in range(4))
    board = Board(tmp_path / "b").write(THREADS_BOARD + charts, plots=PLOTS)
    d = daemons(board)

    def renders() -> int:
        return sum(c.get("renders", 0) for c in d.charts() if d.alive())

    wait_for(lambda: renders() >= 160, 300, "160 renders with workers = 1 (past a worker's recycling)")
    assert all(c["failures"] == 0 for c in d.charts())
    assert d.stop() == 0


def test_nothing_a_plot_started_nor_the_forkserver_outlives_the_daemon(tmp_path, daemons):
    board = fast_board(tmp_path / "b", chart("f", plot="plots:forks", extra=f'params = {{ pids = "{tmp_path / "pids"}" }}'),
                       plots=PLOTS)
    d = daemons(board)
    d.wait_state("f", state="ok")
    family = d.tree()
    assert any("forkserver" in " ".join(p.cmdline()) for p in family)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert d.stop() == 0
    wait_for(lambda: all(gone(p) for p in pids) and all(gone(p.pid) for p in family), 30,
             "the daemon's processes and what its plot started to end with it")


# -- item 7: a worker's death is reported at once, with how it died ----------------------------


def test_a_worker_that_exits_with_status_0_in_a_render_is_reported_at_once(plots):
    # Reported when it happens, it is WorkerDied; left unnoticed, it would be reported at the
    # render timeout as RenderTimeout (the wait for the outcome outlasts that timeout).
    with RenderPool(1, 60.0) as pool:
        outcome = pool.submit(job(plots, "exit0")).result(timeout=120)
        assert (outcome.kind, outcome.error) == (FailureKind.WORKER_DIED,
                                                 "WorkerDied: the render process exited with status 0")
        outcome = pool.submit(job(plots, "kill9")).result(timeout=120)
        assert (outcome.kind, outcome.error) == (
            FailureKind.WORKER_DIED, "WorkerDied: the render process was killed by SIGKILL (perhaps out of memory?)")
        assert isinstance(pool.submit(job(plots, "line")).result(timeout=120), RenderOutput)


def test_jobs_a_worker_held_behind_a_render_that_died_or_hung_or_left_are_rendered(plots):
    """A backlog of short renders is pipelined (several jobs sent to one worker); the jobs waiting
    behind a render whose worker died, was killed at the timeout or left are given to a new worker."""
    with RenderPool(1, 5.0, max_tasks=4) as pool:
        warm = [pool.submit(job(plots, "line")) for _ in range(30)]  # short renders: pipelining starts
        assert all(isinstance(f.result(timeout=120), RenderOutput) for f in warm)
        batch = [pool.submit(job(plots, name)) for name in ["line", "kill9", "line", "line", "line", "line"]]
        hang = pool.submit(job(plots, "forks", pids=str(plots / "pids"), hang=True))
        after = [pool.submit(job(plots, "line")) for _ in range(6)]
        outcomes = [f.result(timeout=120) for f in batch + [hang] + after]
    assert outcomes[1].kind is FailureKind.WORKER_DIED
    assert outcomes[len(batch)].kind is FailureKind.TIMEOUT
    rest = [o for i, o in enumerate(outcomes) if i not in (1, len(batch))]
    assert all(isinstance(o, RenderOutput) for o in rest), [o for o in rest if not isinstance(o, RenderOutput)]
