"""The built-in server (`run --serve`, `demo`) under load, before and after (issue 12, item 8).

    python bench/serve_load.py                  # 3 rounds of each server, alternating
    python bench/serve_load.py --rounds 1 --seconds 5

"Before" is renderer/serve.py as it was at 58737fa (the stdlib ThreadingHTTPServer), kept as
bench/baseline_serve.py; "after" is renderer/serve.py of this tree. Each server runs alone in
its own process serving a 1.5 kB PNG; the load generator is another process (asyncio, so its
200 clients cost no threads). Two scenarios:

- load: 200 clients at once, each in a loop: connect, GET /img.png?v=1, read to the end.
  Latency is from the start of connect() to the last byte (a connection that waits in a full
  listen backlog counts). Requests/s, p50, p99, max, errors (60 s timeout, resets).
- idle flood: the server under RLIMIT_NOFILE 128 (`ulimit -n 128`), 200 connections that send
  part of a request head and stop; then the server's CPU use over 3 s and the time one ordinary
  GET takes (10 s timeout).
- slow readers: 40 clients that ask for a 19 MB image and never read it (4 kB receive
  buffers); then the time an ordinary GET of the small image takes, and one of the large image
  (60 s timeout each), while they are still connected.

Prints the machine and the figures; writes them as JSON to bench/results/serve-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))

from run import capacity, loadavg, machine  # noqa: E402

SERVERS = {"before": "baseline_serve", "after": "renderer.serve.server"}
CLIENTS = 200

SERVER = """
import sys
sys.path.insert(0, {bench!r})
from importlib import import_module
server = import_module(sys.argv[1]).start_server(sys.argv[2], 0)
print(server.port, flush=True)
sys.stdin.read()
server.shutdown()
"""

LOAD = """
import asyncio, json, sys, time

async def client(port, deadline, latencies, errors):
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
            writer.write(b"GET /img.png?v=1 HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n")
            data = await asyncio.wait_for(reader.read(), 60)
            writer.close()
            if not data.startswith(b"HTTP/1.0 200 "):
                raise ValueError(data[:40])
            latencies.append(time.monotonic() - start)
        except Exception as exc:
            errors.append(type(exc).__name__)

async def main(port, clients, seconds):
    latencies, errors = [], []
    start = time.monotonic()
    await asyncio.gather(*(client(port, start + seconds, latencies, errors) for _ in range(clients)))
    print(json.dumps({"wall": time.monotonic() - start, "latencies": latencies, "errors": errors}))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
"""


def png_file(folder: Path) -> None:
    """A small PNG (about 1.5 kB; the issue measured with 1.6 kB)."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6, 0.8), dpi=50)
    fig.add_subplot().plot([1, 3, 2, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    (folder / "img.png").write_bytes(buf.getvalue())


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO)
    e["PYTHONUNBUFFERED"] = "1"
    return e


class Server:
    """One server in its own process, optionally under a soft RLIMIT_NOFILE."""

    def __init__(self, module: str, folder: Path, nofile: int | None = None) -> None:
        def limit() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        self.proc = subprocess.Popen([sys.executable, "-c", SERVER.format(bench=str(BENCH)), module, str(folder)],
                                     env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, preexec_fn=limit)
        self.port = int(self.proc.stdout.readline())

    def cpu(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def load(module: str, folder: Path, seconds: float) -> dict[str, Any]:
    server = Server(module, folder)
    try:
        cpu = server.cpu()
        out = subprocess.run([sys.executable, "-c", LOAD, str(server.port), str(CLIENTS), str(seconds)],
                             capture_output=True, text=True, check=True, timeout=seconds + 300)
        cpu = server.cpu() - cpu
    finally:
        server.close()
    result = json.loads(out.stdout)
    lat = [x * 1000 for x in result["latencies"]]
    errors: dict[str, int] = {}
    for name in result["errors"]:
        errors[name] = errors.get(name, 0) + 1
    return {
        "requests_per_s": len(lat) / result["wall"], "ok": len(lat), "errors": errors,
        "p50_ms": statistics.median(lat) if lat else None, "p99_ms": pct(lat, 0.99) if lat else None,
        "max_ms": max(lat) if lat else None, "wall_s": result["wall"], "server_cpu_s": cpu,
    }


def idle_flood(module: str, folder: Path) -> dict[str, Any]:
    server = Server(module, folder, nofile=128)
    idle = []
    try:
        for _ in range(CLIENTS):
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=3)
            except OSError:
                break  # the listen backlog is full: the server has stopped accepting
            sock.sendall(b"GET /img.png HTTP/1.1\r\nHost: x\r\n")
            idle.append(sock)
        cpu, wall = server.cpu(), time.monotonic()
        time.sleep(3)  # the measurement window
        share = (server.cpu() - cpu) / (time.monotonic() - wall)
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET /img.png?v=1 HTTP/1.0\r\n\r\n")
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            status = answer.split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            status = f"{type(exc).__name__}: {exc}"
        return {"idle_connected": len(idle), "cpu_share": share, "get_ms": (time.monotonic() - start) * 1000,
                "get": status}
    finally:
        for sock in idle:
            sock.close()
        server.close()


SLOW_READERS = 40


def timed_get(port: int, path: str) -> tuple[float, str]:
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            first, size = b"", 0
            while chunk := sock.recv(1 << 20):
                first, size = first or chunk, size + len(chunk)
        line = first.split(b"\r\n", 1)[0].decode()
        status = f"{line} ({size} bytes)"
    except OSError as exc:
        status = f"{type(exc).__name__}: {exc}"
    return (time.monotonic() - start) * 1000, status


def slow_readers(module: str, folder: Path) -> dict[str, Any]:
    server = Server(module, folder)
    slow = []
    try:
        for _ in range(SLOW_READERS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"GET /big.png HTTP/1.0\r\n\r\n")
            slow.append(sock)
        small_ms, small = timed_get(server.port, "/img.png?v=1")
        big_ms, big = timed_get(server.port, "/big.png")
        return {"slow_readers": len(slow), "small_get_ms": small_ms, "small_get": small,
                "big_get_ms": big_ms, "big_get": big}
    finally:
        for sock in slow:
            sock.close()
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each server, alternating")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one load run")
    args = parser.parse_args()
    info = machine()
    print("machine:", json.dumps({k: info[k] for k in ("cpu", "cores", "memory_gib", "os", "python")}))
    print(f"load average {loadavg()}, cores' worth free {capacity()}")
    results: dict[str, Any] = {"machine": info, "clients": CLIENTS, "seconds": args.seconds,
                               "load": {name: [] for name in SERVERS}, "idle_flood": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        png_file(folder)
        (folder / "big.png").write_bytes(os.urandom(19 << 20))
        print(f"image: {(folder / 'img.png').stat().st_size} bytes; {CLIENTS} clients, {args.seconds:g} s a run")
        for i in range(args.rounds):
            for name, module in SERVERS.items():
                r = load(module, folder, args.seconds)
                results["load"][name].append(r)
                print(f"round {i + 1} {name:6}: {r['requests_per_s']:7.0f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                      f"p99 {r['p99_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms  errors {r['errors'] or 0}  "
                      f"(server CPU {r['server_cpu_s']:.1f} s, load {loadavg()[0]})")
        for name, module in SERVERS.items():
            r = idle_flood(module, folder)
            results["idle_flood"][name] = r
            print(f"idle flood {name:6}: {r['idle_connected']} idle connected; server CPU {r['cpu_share'] * 100:5.1f}% of a core; "
                  f"an ordinary GET: {r['get']} after {r['get_ms']:.0f} ms")
        for name, module in SERVERS.items():
            r = slow_readers(module, folder)
            results.setdefault("slow_readers", {})[name] = r
            print(f"slow readers {name:6}: {r['slow_readers']} of a 19 MB image; small GET {r['small_get']} after "
                  f"{r['small_get_ms']:.0f} ms, large GET {r['big_get']} after {r['big_get_ms']:.0f} ms")
    print("\nmedians over rounds:")
    for name in SERVERS:
        rows = results["load"][name]
        med = {k: statistics.median(r[k] for r in rows) for k in ("requests_per_s", "p50_ms", "p99_ms", "max_ms")}
        results.setdefault("median", {})[name] = med
        print(f"  {name:6}: {med['requests_per_s']:7.0f} req/s  p50 {med['p50_ms']:7.1f} ms  "
              f"p99 {med['p99_ms']:7.1f} ms  max {med['max_ms']:7.1f} ms")
    out = BENCH / "results" / f"serve-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"written: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
