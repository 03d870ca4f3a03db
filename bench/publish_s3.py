"""What mirroring to object storage costs under `run`: 1,000 charts re-rendered continuously.

    python bench/publish_s3.py [--charts N] [--rate FILES_PER_S] [--seconds N]   # defaults 1,000, 20, 60

One family of N tiny charts (`foreach = "data/h*.txt"`, 40 x 20 px), a feeder rewriting RATE of
their files a second (renamed into place, spread over the charts), under `plotboard run -v
--log-format json`, twice: with `[publish]` into moto's server (`ThreadedMotoServer` in a process
of its own on 127.0.0.1, behind a proxy in this process that notes when each request was
answered), and the same board without `[publish]`. Each measured period starts after the cold
pass (every chart rendered; for the published board, every image also in the store) and 10 s of
feeding.

- Publishing lag: from a render published locally (the daemon's log line, ms) to the first
  upload of that chart's image answered by the store after it.
- Requests per render: every request the store got during the period / renders in the period.
- CPU per render: the daemon process's own CPU time (user + system) during the period /
  renders, and the same for the whole tree (the render processes too).
Raw figures: bench/results/publish-s3-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import run as harness  # noqa: E402  machine(), loadavg()
from scale import env  # noqa: E402
from windows_cost import tree_cpu  # noqa: E402

BUCKET = "bench"
PLOT = '''def tiny(fig, inputs, **params):
    fig.add_subplot().plot([float(v) for v in open(inputs[0]).read().split()])
'''
MOTO = '''import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
time.sleep(10 ** 6)
'''
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


class Proxy:
    """Forwards TCP to the store; notes each request (method, key) and when it was answered."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.answered: list[tuple[float, str, str]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            asked: list[tuple[str, str]] = []
            threading.Thread(target=self._up, args=(client, server, asked), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, asked), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket, asked: list) -> None:
        import re

        request = re.compile(rb"(PUT|GET|DELETE|HEAD|POST) /[^/ ?]+/?([^ ?]*)[^ ]* HTTP/1\.1\r\n")
        try:
            while data := src.recv(65536):
                with self.lock:
                    asked += [(m.decode(), k.decode()) for m, k in request.findall(data)]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def _down(self, src: socket.socket, dst: socket.socket, asked: list) -> None:
        try:
            while data := src.recv(65536):
                now = time.time()
                if data.startswith(b"HTTP/1.1 "):
                    with self.lock:
                        if asked:
                            method, key = asked.pop(0)
                            self.answered.append((now, method, key))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()


def make_board(folder: Path, n: int, publish: str) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "plots.py").write_text(PLOT)
    for i in range(n):
        (folder / f"data/h{i}.txt").write_text("1 2 3\n")
    (folder / "plotboard.toml").write_text(
        '[board]\nworkers = 2\n[defaults]\nsize = [1, 0.5]\ndpi = 40\nhidpi = false\n'
        '[[charts]]\nname = "h{match}"\nforeach = "data/h*.txt"\ninputs = ["{path}"]\nplot = "plots:tiny"\n' + publish)
    return folder / "plotboard.toml"


def feed(data: Path, n: int, rate: float, stop: threading.Event) -> None:
    rng = random.Random(1)
    order = list(range(n))
    rng.shuffle(order)
    k, start = 0, time.monotonic()
    while not stop.is_set():
        i = order[k % n]
        tmp = data / f".h{i}.tmp"
        tmp.write_text(" ".join(str(rng.random()) for _ in range(10)) + "\n")
        os.replace(tmp, data / f"h{i}.txt")
        k += 1
        time.sleep(max(0.0, start + k / rate - time.monotonic()))


def rendered(log: Path, since: float, until: float) -> list[tuple[float, str]]:
    found = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("result") in ("changed", "unchanged") and "chart" in entry:
            at = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
            if since <= at < until:
                found.append((at, entry["chart"]))
    return found


def all_rendered(output: Path, n: int) -> bool:
    try:
        charts = json.loads((output / "status.json").read_text())["charts"]
    except (OSError, ValueError, KeyError):
        return False
    return len(charts) == n and all(c.get("rendered_at") for c in charts)


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure(top: Path, n: int, rate: float, seconds: float, proxy: Proxy | None, client: Any) -> dict[str, Any]:
    name = "published" if proxy else "plain"
    publish = (f'\n[publish]\nurl = "s3://{BUCKET}/{name}/"\nendpoint_url = "http://127.0.0.1:{proxy.port}"\n'
               if proxy else "")
    board = make_board(top / name, n, publish)
    output = board.parent / "public"
    log = board.parent / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-v", "--log-format", "json", "-c", str(board)],
                                env={**env(), **AWS}, stdout=out, stderr=subprocess.STDOUT, cwd=board.parent)
    try:
        wait(lambda: all_rendered(output, n), 900, "the cold pass")
        if proxy:
            def in_store() -> bool:
                keys = set()
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{name}/"):
                    keys |= {o["Key"] for o in page.get("Contents", [])}
                return len(keys) >= n
            wait(in_store, 900, "the cold mirror")
        stop = threading.Event()
        feeder = threading.Thread(target=feed, args=(board.parent / "data", n, rate, stop), daemon=True)
        feeder.start()
        time.sleep(10)
        cpu0, t0 = tree_cpu(proc.pid), time.time()
        answered0 = len(proxy.answered) if proxy else 0
        time.sleep(seconds)
        cpu1, t1 = tree_cpu(proc.pid), time.time()
        answered1 = len(proxy.answered) if proxy else 0
        stop.set()
        feeder.join()
        time.sleep(10)  # the period's last renders get published and sent
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    renders = rendered(log, t0, t1)
    result: dict[str, Any] = {
        "renders": len(renders), "renders_per_s": len(renders) / (t1 - t0),
        "daemon_cpu_ms_per_render": 1000 * (cpu1["daemon"] - cpu0["daemon"]) / max(1, len(renders)),
        "tree_cpu_ms_per_render": 1000 * (cpu1["all"] - cpu0["all"]) / max(1, len(renders)),
    }
    if proxy:
        puts: dict[str, list[float]] = defaultdict(list)
        for at, method, key in proxy.answered:
            if method == "PUT":
                puts[key].append(at)
        lags = []
        for at, chart in renders:
            later = [p for p in puts.get(f"{name}/{chart}.png", []) if p >= at]
            if later:
                lags.append(min(later) - at)
        period = proxy.answered[answered0:answered1]
        by_method: dict[str, int] = defaultdict(int)
        for _, method, _ in period:
            by_method[method] += 1
        result.update({
            "lag": harness.stats(lags), "lag_samples": len(lags), "never_sent": len(renders) - len(lags),
            "requests": len(period), "requests_by_method": dict(by_method),
            "requests_per_render": len(period) / max(1, len(renders)),
        })
    shutil.rmtree(board.parent, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--charts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    import boto3
    from botocore.config import Config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = subprocess.Popen([sys.executable, "-c", MOTO, str(port)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **AWS})
    try:
        assert moto.stdout.readline().strip() == "ready"
        os.environ.update(AWS)
        client = boto3.session.Session().client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                                config=Config(s3={"addressing_style": "path"}))
        client.create_bucket(Bucket=BUCKET)
        top = Path(tempfile.mkdtemp(prefix="publish-s3-"))
        results = {"machine": harness.machine(), "loadavg_before": harness.loadavg(), "charts": args.charts,
                   "rate": args.rate, "seconds": args.seconds}
        results["plain"] = measure(top, args.charts, args.rate, args.seconds, None, client)
        results["published"] = measure(top, args.charts, args.rate, args.seconds, Proxy(port), client)
        results["loadavg_after"] = harness.loadavg()
        shutil.rmtree(top, ignore_errors=True)
    finally:
        moto.kill()
        moto.wait()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"publish-s3-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=1))
    print(f"raw figures: {out}")


if __name__ == "__main__":
    main()
