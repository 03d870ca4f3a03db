"""Renders on a real Dask cluster: a distributed.LocalCluster (2 worker processes, 1 thread each,
on 127.0.0.1) runs in a helper process, and the real CLI renders through it."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Board, cli_env, free_port, wait_for
from daemon_helpers import with_fault

if os.environ.get("CI") != "true":
    pytest.importorskip("distributed")

CLUSTER = """
import signal, sys, threading
from distributed import LocalCluster

def main():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           scheduler_port=int(sys.argv[1]), dashboard_address=None)
    cluster.wait_for_workers(2, timeout=60)
    print(cluster.scheduler_address, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    cluster.close(timeout=20)

if __name__ == "__main__":
    main()
"""

PLOTS = '''
import json, os, signal, time
from pathlib import Path

def line(fig, inputs, **params):
    ax = fig.add_subplot()
    for path in inputs:
        ax.plot([float(v) for v in path.read_text().split()])
        # The mtime shows in the image: shipped inputs must keep it.
        ax.set_title(f"{path.name} {path.stat().st_mtime_ns}")

def probe(fig, inputs, report, **params):
    Path(report).write_text(json.dumps({
        "inputs": [str(p) for p in inputs],
        "text": [p.read_text() for p in inputs],
        "module": __file__,
    }))
    line(fig, inputs)

def killer(fig, inputs, **params):
    os.kill(os.getpid(), signal.SIGKILL)

def sleepy(fig, inputs, **params):
    if inputs[0].read_text().strip() == "hang":
        time.sleep(60)
    line(fig, inputs)

def held(fig, inputs, pidfile, release, **params):
    try:
        fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, str(os.getppid()).encode())  # the Dask worker that started this render
        os.close(fd)
    except FileExistsError:
        pass
    deadline = time.monotonic() + 30
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    line(fig, inputs)
'''

BOARD = """
[board]
title = "Dask board"
render_timeout = "{timeout}"
{executor}

[defaults]
size = [4, 2]
dpi = 50
hidpi = false
"""

CHART = """
[[charts]]
name = "{name}"
title = "{name}"
plot = "plots:{plot}"
inputs = [{inputs}]
params = {params}
"""


class Cluster:
    """A LocalCluster in a helper process; stop() closes it and waits for every process."""

    def __init__(self, port: int, tmp: Path) -> None:
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-c", CLUSTER, str(port)], env=cli_env(TMPDIR=str(tmp)),
                                     stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 90)
        self.address = self.proc.stdout.readline().strip() if ready else ""
        if not self.address.startswith("tcp://"):
            self.stop()
            pytest.fail("the LocalCluster did not start")

    def kill(self) -> None:
        """Lose the scheduler abruptly (its worker processes follow their parent)."""
        self.proc.kill()
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def cluster(tmp_path):
    """Start a cluster (again on the same port with restart()); all stopped at the end, and
    the render processes' folders must be gone with them."""
    started: list[Cluster] = []
    tmp = tmp_path / "cluster-tmp"
    tmp.mkdir()

    class Handle:
        def __init__(self) -> None:
            self.port = free_port()
            self.current = self.restart()

        def restart(self) -> Cluster:
            self.current = Cluster(self.port, tmp)
            started.append(self.current)
            return self.current

        @property
        def address(self) -> str:
            return f"tcp://127.0.0.1:{self.port}"

    yield Handle()
    for c in started:
        c.stop()
    wait_for(lambda: not list(tmp.glob("plotboard-render-*")), 10, "render processes to remove their folders")


def make_board(root: Path, charts: list[tuple[str, str, list[str], dict]], address: str | None,
               timeout: str = "20s") -> Board:
    executor = f'executor = "dask"\nscheduler = "{address}"' if address else ""
    toml = BOARD.format(timeout=timeout, executor=executor)
    for name, plot, inputs, params in charts:
        toml += CHART.format(name=name, plot=plot, inputs=", ".join(json.dumps(i) for i in inputs),
                             params="{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items()) + " }")
    board = Board(root).write(toml, PLOTS)
    return board


def images(output: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(output.iterdir()) if p.suffix in (".png", ".svg")}


def test_build_through_dask_ships_files_and_matches_local_bytes(tmp_path, cluster):
    boards = {}
    for kind, address in (("local", None), ("dask", cluster.address)):
        root = tmp_path / kind
        charts = [
            ("a", "line", ["data/a.txt"], {}),
            ("b", "line", ["data/b.txt"], {}),
            ("many", "line", ["data/series/*.txt"], {}),
            ("probe", "probe", ["data/a.txt"], {"report": str(tmp_path / f"{kind}-report.json")}),
        ]
        board = make_board(root, charts, address)
        # Same bytes and mtimes in both boards: the images show the inputs' names and mtimes.
        for name, text in [("a.txt", "1 2 3 2 1"), ("b.txt", "3 1 4 1 5"),
                           ("series/x.txt", "1 1 2"), ("series/y.txt", "2 3 1")]:
            path = board.data(f"data/{name}", text)
            os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
        boards[kind] = board
    for board in boards.values():
        result = board.cli("build")
        assert result.returncode == 0, result.stderr
        assert [c["state"] for c in board.status()["charts"]] == ["ok"] * 4

    local, dask = images(boards["local"].output), images(boards["dask"].output)
    assert sorted(dask) == ["a.png", "b.png", "many.png", "probe.png"]
    assert dask == local

    # The worker read shipped copies, not the board's files: same names, same text, other folders.
    report = json.loads((tmp_path / "dask-report.json").read_text())
    board_root = str(boards["dask"].root)
    assert [Path(p).name for p in report["inputs"]] == ["a.txt"]
    assert not report["inputs"][0].startswith(board_root)
    assert report["text"] == ["1 2 3 2 1"]
    assert not report["module"].startswith(board_root)
    assert Path(report["module"]).name == "plots.py"
    # What the worker used is named as on the daemon's side (on another host the worker's copy
    # does not exist there): a second build finds nothing to do.
    state = json.loads((boards["dask"].root / ".plotboard" / "state.json").read_text())
    assert list(state["charts"]["a"]["modules"]) == [str(boards["dask"].root / "plots.py")]
    again = boards["dask"].cli("build")
    assert again.returncode == 0 and "0 rendered" in again.stderr, again.stderr


def test_killed_and_hung_renders_fail_alone_and_the_board_keeps_updating(tmp_path, cluster):
    board = make_board(tmp_path / "board", [
        ("a", "line", ["data/a.txt"], {}),
        ("killer", "killer", ["data/a.txt"], {}),
        ("slow", "sleepy", ["data/s.txt"], {}),
    ], cluster.address, timeout="2s")
    board.data("data/a.txt", "1 2 3")
    board.data("data/s.txt", "3 2 1")
    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    states = {c["name"]: c for c in board.status()["charts"]}
    assert states["a"]["state"] == states["slow"]["state"] == "ok"
    assert states["killer"]["state"] == "error"
    assert states["killer"]["error"].startswith("WorkerDied: the render process was killed by SIGKILL")

    a, slow = (board.output / "a.png").read_bytes(), (board.output / "slow.png").read_bytes()
    board.data("data/a.txt", "5 5 1 1")
    board.data("data/s.txt", "hang")
    started = time.monotonic()
    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 40  # the 60 s sleep was cut short
    states = {c["name"]: c for c in board.status()["charts"]}
    assert states["slow"]["error"] == "RenderTimeout: render took longer than 2s and was killed"
    assert (board.output / "slow.png").read_bytes() == slow  # the previous image stays
    assert states["a"]["state"] == "ok" and states["a"]["renders"] == 2
    assert (board.output / "a.png").read_bytes() != a
    assert states["killer"]["failures"] == 2


def test_a_lost_dask_worker_fails_only_its_render(tmp_path, cluster):
    pidfile, release = tmp_path / "worker.pid", tmp_path / "release"
    board = make_board(tmp_path / "board", [
        ("a", "line", ["data/a.txt"], {}),
        ("b", "line", ["data/b.txt"], {}),
        ("held", "held", ["data/a.txt"], {"pidfile": str(pidfile), "release": str(release)}),
    ], cluster.address)
    board.data("data/a.txt", "1 2 3")
    board.data("data/b.txt", "3 2 1")
    build = subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(board.file)],
                             env=cli_env(), stderr=subprocess.PIPE, text=True)
    try:
        worker = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 60, "the held render to start"))
        os.kill(worker, signal.SIGKILL)
        _, err = build.communicate(timeout=60)
    finally:
        release.touch()  # a retry of the held render elsewhere ends at once
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert build.returncode == 1, err
    states = {c["name"]: c for c in board.status()["charts"]}
    assert states["a"]["state"] == states["b"]["state"] == "ok"
    assert states["held"]["state"] == "error"
    assert states["held"]["error"].startswith("WorkerDied: the Dask worker tcp://127.0.0.1:")

    board.data("data/b.txt", "9 9 9")
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert board.chart("held")["state"] == "ok" and board.chart("b")["renders"] == 2



def test_run_renders_through_dask_fails_renders_with_the_scheduler_and_reconnects(tmp_path, cluster):
    pidfile, release = tmp_path / "worker.pid", tmp_path / "release"
    board = make_board(tmp_path / "board", [
        ("a", "line", ["data/a.txt"], {}),
        ("held", "held", ["data/h.txt"], {"pidfile": str(pidfile), "release": str(release)}),
    ], cluster.address)
    board.data("data/a.txt", "1 2 3")
    board.data("data/h.txt", "3 2 1")
    log = open(tmp_path / "run.log", "w")
    run = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board.file)], env=cli_env(),
                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def chart(name: str) -> dict:
        assert run.poll() is None, (tmp_path / "run.log").read_text()
        try:
            return board.chart(name)
        except (OSError, ValueError, StopIteration):
            return {}

    try:
        wait_for(lambda: chart("a").get("state") == "ok" and pidfile.exists(), 60, "a render, and held's to start")
        cluster.current.kill()
        wait_for(lambda: chart("held").get("state") == "error", 30, "the render in flight to fail")
        assert chart("held")["error"] == f"SchedulerLost: lost the connection to the Dask scheduler at {cluster.address}"

        release.touch()
        cluster.restart()
        values = iter(range(10_000))

        def rendered_again() -> bool:
            if chart("a").get("renders", 0) >= 2:
                return True
            board.data("data/a.txt", f"1 {next(values)} 1")  # until one lands on the new scheduler
            return False
        wait_for(rendered_again, 60, "a render after the scheduler came back", interval=0.5)
        assert chart("a")["state"] == "ok"
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            code = run.wait(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            log.close()
    assert code == 0, (tmp_path / "run.log").read_text()


def test_run_stops_with_status_1_when_the_dask_watcher_dies(tmp_path, cluster):
    board = make_board(tmp_path / "board", [("a", "line", ["data/a.txt"], {}), ("b", "line", ["data/a.txt"], {})],
                       cluster.address)
    board.data("data/a.txt", "1 2 3")
    # The watcher's check of the cluster's workers fails once: the thread dies, and with it the
    # noticing of lost workers and schedulers. The daemon must stop, not render on without it.
    run = subprocess.run(with_fault("renderer.executors.dask_client:DaskExecutor._check_workers",
                                    "run", "-c", board.file),
                         cwd=board.root, env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1, run.stderr
    assert ("thread plotboard-dask died: RuntimeError: injected fault in DaskExecutor._check_workers\n"
            "Traceback (most recent call last):") in run.stderr
    assert re.search(r"thread plotboard-dask died(, abandoning .*)?; stopping \(exit status 1\)", run.stderr), run.stderr
    assert "WorkerDied" not in run.stderr and "SchedulerUnavailable" not in run.stderr, run.stderr
    assert not any(c.get("error") for c in board.status()["charts"])


def test_a_missing_distributed_names_the_extra(tmp_path):
    board = make_board(tmp_path / "board", [("a", "line", ["data/a.txt"], {})], "tcp://127.0.0.1:8786")
    board.data("data/a.txt", "1 2 3")
    no_dask = "import sys; sys.modules['distributed'] = None; from renderer.cli import main; sys.exit(main())"
    for command in ("build", "run"):
        result = subprocess.run([sys.executable, "-c", no_dask, command, "-c", str(board.file)],
                                env=cli_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "pip install 'plotboard[dask]'" in result.stderr
        assert "distributed" in result.stderr
    assert not (board.output / "a.png").exists()


def test_parcels_carry_small_inputs_and_leave_big_ones_in_place(tmp_path):
    from renderer.executors.dask_remote import InputNotShipped, pack, unpack
    from renderer.render.jobs import RenderJob

    small, big, module = tmp_path / "d" / "small.csv", tmp_path / "big.csv", tmp_path / "plots.py"
    small.parent.mkdir()
    small.write_text("1,2\n")
    big.write_bytes(b"x" * 100)
    module.write_text("def line(fig, inputs): pass\n")
    os.utime(small, ns=(1_600_000_000_000_000_001, 1_600_000_000_000_000_001))
    job = RenderJob(name="c", plot="plots:line", plot_file=str(module), root=str(tmp_path),
                    inputs=(str(small), str(big)), size=(4, 2), dpi=50, hidpi=False, formats=("png",),
                    png_compression=6, theme="light")
    parcel = pack(job, limit=50)
    assert set(parcel.files) == {str(small)} and set(parcel.in_place) == {str(big)}

    work = tmp_path / "worker"
    shipped = unpack(parcel, work)
    copy = Path(shipped.inputs[0])
    assert copy.is_relative_to(work) and copy.name == "small.csv" and copy.read_text() == "1,2\n"
    assert copy.stat().st_mtime_ns == 1_600_000_000_000_000_001
    assert shipped.inputs[1] == str(big)  # read in place, as on a shared filesystem
    assert Path(shipped.plot_file).is_relative_to(work) and Path(shipped.plot_file).read_bytes() == module.read_bytes()

    big.write_bytes(b"x" * 10)  # not the file the daemon saw
    with pytest.raises(InputNotShipped, match="big.csv .* shipped to Dask workers"):
        unpack(parcel, work)




def test_history_through_dask_keeps_the_replaced_image_as_a_local_build_does(tmp_path, cluster):
    board = make_board(tmp_path / "b", [("a", "line", ["data/a.txt"], {})], cluster.address)
    board.file.write_text(board.file.read_text().replace('title = "a"', 'title = "a"\nhistory = 1'))
    images = []
    for text in ("1 2 3", "3 2 1", "2 2 9"):
        board.data("data/a.txt", text)
        result = board.cli("build")
        assert result.returncode == 0, result.stderr
        images.append((board.output / "a.png").read_bytes())
    (entry,) = json.loads((board.output / "history" / "a.json").read_text())
    assert (board.output / entry["image"]).read_bytes() == images[1]  # newest previous; the oldest deleted
    assert sorted(os.listdir(board.output / "history" / "a")) == [Path(entry["image"]).name]
