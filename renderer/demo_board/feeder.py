"""Synthetic metrics for the demo board: a small web service simulated one second at a time.

Traffic follows a slow wave with noise and the occasional surge; CPU per host, latency
percentiles and the job queue all follow from it, so the charts move together the way a real
service's would. Each file keeps the last `window` seconds and is rewritten the way a careful
producer does it: a hidden temporary file in the same folder, then os.replace, so a reader
(the daemon, or anyone) sees the old file or the new one, never half of one.

Run on its own to feed a folder:  python feeder.py DATA_DIR
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
from collections import deque
from pathlib import Path

HOSTS = ("web-1", "web-2", "db-1", "worker-1")
ENDPOINTS = {"/api/search": 42.0, "/api/orders": 18.0, "/api/cart": 27.0, "/login": 6.0}
SERVICE_RATE = 13.0  # jobs per second the workers drain from the queue
AUTOSCALE_AT = 150  # a backlog this deep brings a second worker pool online
FILES = ("cpu.csv", "latency.csv", "requests.csv", "queue.csv")


class Feeder:
    """The simulated service: step() advances one second, write() publishes the CSV files."""

    def __init__(self, folder: Path, window: int = 600, seed: int | None = None) -> None:
        self.folder = Path(folder)
        self.window = window
        self.rng = random.Random(seed)
        self.rows: dict[str, deque[str]] = {name: deque(maxlen=window) for name in FILES}
        self.phase = self.rng.uniform(0, 2 * math.pi)
        self.surge_left = 0
        self.surge_size = 0.0
        self.cpu = {host: 0.0 for host in HOSTS}
        self.queue = 0.0

    def load(self, t: float) -> float:
        """Traffic relative to normal: a 7-minute wave, noise, and surges of 20-60 s."""
        wave = 1 + 0.35 * math.sin(2 * math.pi * t / 420 + self.phase) + 0.1 * math.sin(2 * math.pi * t / 97)
        if self.surge_left > 0:
            self.surge_left -= 1
        elif self.rng.random() < 1 / 150:
            self.surge_left = self.rng.randint(20, 60)
            self.surge_size = self.rng.uniform(0.5, 1.1)
        surge = self.surge_size if self.surge_left > 0 else 0.0
        return max(0.05, wave + surge + self.rng.gauss(0, 0.05))

    def step(self, t: float) -> None:
        """Simulate the second ending at epoch time t and append one row to each file."""
        rng = self.rng
        load = self.load(t)
        stamp = f"{t:.0f}"

        rates = {ep: max(0.0, base * load * rng.lognormvariate(0, 0.12)) for ep, base in ENDPOINTS.items()}
        self.rows["requests.csv"].append(",".join([stamp] + [f"{r:.1f}" for r in rates.values()]))

        arrivals = _poisson(rng, rates["/api/orders"] * 0.6)
        capacity = SERVICE_RATE * (1.7 if self.queue > AUTOSCALE_AT else 1.0)
        served = min(self.queue + arrivals, _poisson(rng, capacity))
        self.queue = max(0.0, self.queue + arrivals - served)
        self.rows["queue.csv"].append(f"{stamp},{self.queue:.0f}")

        total = sum(rates.values())
        targets = {
            "web-1": 8 + 0.4 * total,
            "web-2": 6 + 0.36 * total,
            "db-1": 10 + 1.2 * rates["/api/orders"] + 0.2 * rates["/api/search"],
            "worker-1": 5 + 30 * min(1.0, self.queue / 40) + 2.0 * served,
        }
        for host, target in targets.items():
            # Smoothed towards the target with jitter: CPU readings lag load and never sit still.
            self.cpu[host] += 0.3 * (target - self.cpu[host]) + rng.gauss(0, 2.0)
            self.cpu[host] = min(100.0, max(0.5, self.cpu[host]))
        self.rows["cpu.csv"].append(",".join([stamp] + [f"{self.cpu[h]:.1f}" for h in HOSTS]))

        busy = max(self.cpu["web-1"], self.cpu["web-2"], self.cpu["db-1"]) / 100
        p50 = 28 + 60 * busy ** 3 + rng.gauss(0, 1.5)
        p95 = p50 * (2.1 + 1.5 * busy ** 2 + abs(rng.gauss(0, 0.15)))
        p99 = p95 * (1.5 + 1.2 * busy ** 2 + abs(rng.gauss(0, 0.2)))
        self.rows["latency.csv"].append(f"{stamp},{p50:.1f},{p95:.1f},{p99:.1f}")

    def backfill(self, now: float) -> None:
        """Simulate the window before now, so the charts have history from the first render."""
        for t in range(int(now) - self.window + 1, int(now) + 1):
            self.step(float(t))

    def write(self) -> None:
        """Publish every file atomically (temp file + os.replace)."""
        headers = {
            "cpu.csv": "time," + ",".join(HOSTS),
            "latency.csv": "time,p50,p95,p99",
            "requests.csv": "time," + ",".join(ENDPOINTS),
            "queue.csv": "time,depth",
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, rows in self.rows.items():
            text = headers[name] + "\n" + "\n".join(rows) + "\n"
            temp = self.folder / f".{name}.{os.getpid()}.tmp"
            # No fsync: after a crash the data is simply simulated afresh.
            temp.write_text(text)
            os.replace(temp, self.folder / name)

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Step and write once per interval, on the tick, until stop is set."""
        next_tick = math.floor(time.time()) + interval
        while not stop.wait(max(0.0, next_tick - time.time())):
            now = time.time()
            next_tick = max(next_tick, math.floor(now) - self.window)
            while next_tick <= now:  # catch up after a pause (e.g. a suspended laptop)
                self.step(next_tick)
                next_tick += interval
            self.write()


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (normal approximation above 30)."""
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python feeder.py DATA_DIR", file=sys.stderr)
        return 2
    feeder = Feeder(Path(argv[0]))
    feeder.backfill(time.time())
    feeder.write()
    stop = threading.Event()
    try:
        feeder.run(stop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
