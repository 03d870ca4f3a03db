"""`plotboard demo`: the embedded board, its synthetic feeder, and a clean Ctrl-C."""

from __future__ import annotations

import csv
import http.client
import io
import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from conftest import REPO, cli, cli_env, complete_png, free_port, living, png_problem, temp_files, wait_for
from test_events import Stream

from renderer.demo import BOARD_FILES, DEMO_DIR, install, load_feeder

CHARTS = ("cpu", "latency", "requests", "queue")
HOSTS = ("db-1", "web-1", "web-2", "worker-1")
DISKS = tuple(f"disk-{h}" for h in HOSTS)  # the family disk-{match}, one chart per data/disk-*.csv
WINDOWS = ("1h", "1d", "7d")
GROUPS = {"requests": "Web traffic", "latency": "Web traffic", "cpu": "Capacity", "queue": "Capacity",
          **{d: "Disks" for d in DISKS}}
DATA = sorted(["cpu.csv", "latency.csv", "queue.csv", "requests.csv", *(f"{d}.csv" for d in DISKS)])


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def served(port: int, path: str) -> bytes | None:
    """The body of a 200 answer, or None while the server is not up yet."""
    try:
        status, body = http_get(port, path)
    except ConnectionRefusedError:
        return None
    return body if status == 200 else None


def start_demo(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """Start `python -m renderer demo ARGS` with its output in a file (a pipe could fill up)."""
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "renderer", "demo", *args],
                                env=cli_env(), stdout=f, stderr=subprocess.STDOUT)
    return proc, out


def descendants(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> None:
    try:
        for p in psutil.Process(proc.pid).children(recursive=True):
            seen.setdefault(p.pid, p)
    except psutil.NoSuchProcess:
        pass


def stop_demo(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> int:
    """Ctrl-C the demo; returns its exit status, failing if anything it started lives on."""
    descendants(proc, seen)
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_for(lambda: not living(seen.values()), timeout=10, what="the demo's worker processes to exit")
    return code


def test_demo_renders_live_serves_and_stops_cleanly_on_ctrl_c(tmp_path):
    port, folder = free_port(), tmp_path / "demo"
    proc, out = start_demo(tmp_path, "--port", str(port), "--dir", str(folder))
    seen: dict[int, psutil.Process] = {}
    try:
        public = folder / "public"
        wait_for(lambda: (public / "index.html").exists() and all((public / f"{c}.png").exists() for c in CHARTS),
                 timeout=45, what="the demo's page and four images")
        descendants(proc, seen)
        assert f"http://127.0.0.1:{port}/" in out.read_text()

        page = wait_for(lambda: served(port, "/"), timeout=10, what="the server to answer")
        for title in (b"CPU by host", b"Response time", b"Request rate by endpoint", b"Job queue depth", b"Disk web-1"):
            assert title in page

        def hashes() -> dict[str, str]:
            status, body = http_get(port, "/status.json")
            assert status == 200
            return {c["name"]: c["hash"] for c in json.loads(body)["charts"]}

        first = wait_for(lambda: (h := hashes()) and all(h.values()) and h, timeout=30, what="every chart rendered")
        stream = Stream(port)  # an open page is told when the pages change (/events)
        try:
            assert stream.head()[0].startswith("HTTP/1.0 200") and stream.event().startswith(b"data: ")
        finally:
            stream.close()
        assert set(first) == set(CHARTS + DISKS)
        status, png = http_get(port, f"/cpu.png?v={first['cpu']}")
        assert status == 200 and png_problem(png) is None
        check_family_and_windows(port, public)
        # The feeder keeps writing, so the images keep changing.
        wait_for(lambda: sum(h != first[name] for name, h in hashes().items()) >= 2, timeout=20,
                 what="two charts' images to change")
        descendants(proc, seen)
        assert seen, "the daemon runs its renders in worker processes"
    finally:
        code = stop_demo(proc, seen)
    log = out.read_text()
    assert code == 0, log
    assert "Traceback" not in log, log
    assert temp_files(folder) == []
    assert sorted(p.name for p in (folder / "data").iterdir()) == DATA
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # the server let go of its port
        s.listen()


def check_family_and_windows(port: int, public: Path) -> None:
    """The demo shows sections, a family and time windows, each window its own, different image."""

    def windowed() -> list[dict] | None:
        charts = json.loads(http_get(port, "/status.json")[1])["charts"]
        found = [c for c in charts if c.get("windows")]
        done = found and all(w["hash"] for c in found for w in c["windows"])
        return charts if done else None

    charts = wait_for(windowed, timeout=60, what="every window of the disk charts rendered")
    assert {c["name"]: c["group"] for c in charts} == GROUPS
    family = [c for c in charts if c.get("family")]
    assert sorted(c["name"] for c in family) == list(DISKS)
    assert {c["family"] for c in family} == {"disk-{match}"}
    assert [c["name"] for c in charts if c.get("windows")] == [c["name"] for c in family]
    for chart in family:
        assert [w["name"] for w in chart["windows"]] == list(WINDOWS)
        assert [w["image"] for w in chart["windows"]] == [f"{chart['name']}.{w}.png" for w in WINDOWS]
        images = [complete_png(public / w["image"]) for w in chart["windows"]]
        assert None not in images, chart
        # Each window draws its own span of the disk's history. Not merely other bytes (a plot
        # that ignores `window` still slides a little between two renders): another picture.
        for (a, image_a), (b, image_b) in itertools.combinations(zip(WINDOWS, images), 2):
            share = changed_share(image_a, image_b)
            assert share > 0.05, f"{chart['name']}: {a} and {b} differ in only {share:.1%} of their pixels"
        assert len({w["hash"] for w in chart["windows"]}) == len(WINDOWS)


def changed_share(a: bytes, b: bytes) -> float:
    """The share of the pixels of two same-sized PNGs whose grey level differs by more than 32."""
    from PIL import Image

    x, y = (np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.int16) for data in (a, b))
    assert x.shape == y.shape
    return float((np.abs(x - y) > 32).mean())


def test_demo_without_dir_uses_a_temporary_folder_and_removes_it(tmp_path):
    port = free_port()
    proc, out = start_demo(tmp_path, "--port", str(port))
    seen: dict[int, psutil.Process] = {}
    try:
        found = wait_for(lambda: re.search(r"board in (\S+);", out.read_text()), timeout=20, what="the demo's banner")
        folder = Path(found.group(1))
        assert folder != REPO and not folder.is_relative_to(REPO)
        wait_for(lambda: served(port, "/status.json"), timeout=45, what="the server to answer")
        assert (folder / "public" / "index.html").exists()
    finally:
        code = stop_demo(proc, seen)
    assert code == 0, out.read_text()
    assert not folder.exists()


def test_demo_refuses_to_overwrite_another_board(tmp_path):
    board = tmp_path / "plotboard.toml"
    board.write_text('[board]\ntitle = "mine"\n')
    result = cli("demo", "--port", str(free_port()), "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "is not plotboard's demo board" in result.stderr
    assert board.read_text() == '[board]\ntitle = "mine"\n'
    assert not (tmp_path / "charts.py").exists()


def test_demo_refuses_a_folder_of_other_things_without_a_board_file(tmp_path):
    """A --dir with no board file but a user's data and site: nothing is overwritten or added."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cpu.csv").write_text("mine\n")
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("my site\n")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    result = cli("demo", "--port", str(free_port()), "--dir", str(tmp_path))
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(tmp_path) in lines[0] and "not empty" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "data" / "cpu.csv").read_text() == "mine\n"
    assert (tmp_path / "public" / "index.html").read_text() == "my site\n"


def test_demo_runs_again_in_a_folder_it_ran_in(tmp_path):
    folder = tmp_path / "demo"
    install(folder)
    (folder / "data").mkdir()
    (folder / "public").mkdir()
    port = free_port()
    proc, out = start_demo(tmp_path, "--port", str(port), "--dir", str(folder))
    seen: dict[int, psutil.Process] = {}
    try:
        wait_for(lambda: "board in" in out.read_text(), timeout=45, what="the demo's banner")
    finally:
        code = stop_demo(proc, seen)
    assert code == 0, out.read_text()


def test_demo_refuses_a_file_as_its_folder(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine\n")
    result = cli("demo", "--port", str(free_port()), "--dir", str(path))
    assert result.returncode == 1 and "is not a folder" in result.stderr, result.stderr
    assert path.read_text() == "mine\n"


def test_demo_names_a_busy_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = cli("demo", "--port", str(port), "--dir", str(tmp_path / "demo"))
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and f"--port {port + 1}" in result.stderr


def test_demo_board_ships_inside_the_package():
    assert DEMO_DIR.parent == REPO / "renderer"
    for name in BOARD_FILES + ("feeder.py",):
        assert (DEMO_DIR / name).is_file()


def read_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(v) for v in row] for row in rows[1:]]


def test_feeder_writes_believable_complete_files(tmp_path):
    feeder = load_feeder().Feeder(tmp_path, window=300, seed=7)
    feeder.backfill(1_800_000_000)
    feeder.write()
    assert temp_files(tmp_path) == []

    header, cpu = read_csv(tmp_path / "cpu.csv")
    assert header == ["time", "web-1", "web-2", "db-1", "worker-1"] and len(cpu) == 300
    assert [r[0] for r in cpu] == list(range(1_800_000_000 - 299, 1_800_000_001))
    assert all(0 <= v <= 100 for r in cpu for v in r[1:])
    assert len({round(r[1]) for r in cpu}) > 10  # it moves

    header, latency = read_csv(tmp_path / "latency.csv")
    assert header == ["time", "p50", "p95", "p99"]
    assert all(0 < p50 < p95 < p99 < 5000 for _, p50, p95, p99 in latency)

    header, requests = read_csv(tmp_path / "requests.csv")
    assert header[0] == "time" and len(header) == 5
    assert all(v >= 0 for r in requests for v in r[1:])
    assert 20 < sum(sum(r[1:]) for r in requests) / len(requests) < 500

    header, queue = read_csv(tmp_path / "queue.csv")
    assert header == ["time", "depth"] and all(r[1] >= 0 and r[1] == int(r[1]) for r in queue)

    for disk in DISKS:
        header, used = read_csv(tmp_path / f"{disk}.csv")
        assert header == ["time", "used"]
        # A reading a minute over a week and more, up to the last whole minute: the 7d window is full.
        times = [int(r[0]) for r in used]
        assert times == list(range(times[-1] - (len(times) - 1) * 60, times[-1] + 1, 60))
        assert times[-1] == 1_800_000_000 // 60 * 60 and times[-1] - times[0] >= 7 * 86400
        assert all(0 <= r[1] < 100 for r in used)
        # Windows look different: the last day moves more than the last hour, the week more than the day.
        spread = {span: max(r[1] for r in used[-span:]) - min(r[1] for r in used[-span:]) for span in (60, 1440)}
        whole = max(r[1] for r in used) - min(r[1] for r in used)
        assert spread[60] < spread[1440] <= whole and whole > 5, (disk, spread, whole)


def test_feeder_rewrites_a_disk_file_only_when_it_gains_a_reading(tmp_path):
    feeder = load_feeder().Feeder(tmp_path, window=60, seed=3)
    start = 1_800_000_000 // 60 * 60 + 5  # five seconds past a minute
    feeder.backfill(start)
    feeder.write()
    inodes = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    rows = len((tmp_path / "disk-db-1.csv").read_text().splitlines())
    for t in range(start + 1, start + 55):  # still within the same minute
        feeder.step(t)
    feeder.write()
    kept = sorted(name for name, ino in inodes.items() if (tmp_path / name).stat().st_ino == ino)
    assert kept == [f"{d}.csv" for d in DISKS]  # the service's files were replaced, the disks' not
    feeder.step(start + 55)  # the next minute
    feeder.write()
    assert all((tmp_path / f"{d}.csv").stat().st_ino != inodes[f"{d}.csv"] for d in DISKS)
    assert len((tmp_path / "disk-db-1.csv").read_text().splitlines()) == rows  # a week: the oldest went
    assert temp_files(tmp_path) == []


def test_feeder_run_replaces_files_atomically_every_second(tmp_path):
    feeder = load_feeder().Feeder(tmp_path, window=120)
    feeder.backfill(time.time())
    feeder.write()
    start = read_csv(tmp_path / "latency.csv")[1][-1][0]
    stop = threading.Event()
    thread = threading.Thread(target=feeder.run, args=(stop,))
    thread.start()
    torn = reads = 0
    try:
        def advanced() -> bool:
            nonlocal torn, reads
            text = (tmp_path / "latency.csv").read_text()
            lines = text.split("\n")
            reads += 1
            # A complete file: header, exactly `window` rows of four fields, a final newline.
            if not (lines[0] == "time,p50,p95,p99" and len(lines) == 122 and lines[-1] == ""
                    and all(line.count(",") == 3 for line in lines[1:-1])):
                torn += 1
            return float(lines[-2].split(",")[0]) >= start + 2

        wait_for(advanced, timeout=10, what="two new rows", interval=0.001)
    finally:
        stop.set()
        thread.join()
    assert torn == 0 and reads > 100
    assert temp_files(tmp_path) == []
