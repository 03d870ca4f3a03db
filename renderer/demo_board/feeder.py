"""Synthetic metrics for the demo board: a small web service simulated one second at a time.

Traffic follows a slow wave with noise and the occasional surge; CPU per host, latency
percentiles and the job queue all follow from it, so the charts move together the way a real
service's would. Each of those files keeps the last `window` seconds and is rewritten every
second. Besides, each host's disk is sampled once a minute (data/disk-HOST.csv, the board's
family): a week of history is made up at start, and a file is rewritten only when it gains a
row, so the disk charts cost a render a minute, not one a second.

Every file is rewritten the way a careful producer does it: a hidden temporary file in the same
folder, then os.replace, so a reader (the daemon, or anyone) sees the old file or the new one,
never half of one.

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
DISK_SAMPLE = 60  # seconds between two disk readings
DISK_HISTORY = 7 * 86400 + 3600  # a week and a bit, so the board's 7d window is full from the start


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
        self.disks = Disks(self.rng)

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
        self.disks.advance(t)

    def backfill(self, now: float) -> None:
        """Simulate the window before now (and the disks' week), so the charts have history
        from the first render."""
        self.disks.advance(now)
        for t in range(int(now) - self.window + 1, int(now) + 1):
            self.step(float(t))

    def write(self) -> None:
        """Publish every file atomically (temp file + os.replace); a disk file only when it changed."""
        headers = {
            "cpu.csv": "time," + ",".join(HOSTS),
            "latency.csv": "time,p50,p95,p99",
            "requests.csv": "time," + ",".join(ENDPOINTS),
            "queue.csv": "time,depth",
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, rows in self.rows.items():
            _publish(self.folder / name, headers[name] + "\n" + "\n".join(rows) + "\n")
        for host in self.disks.changed():
            _publish(self.folder / f"disk-{host}.csv", "time,used\n" + "\n".join(self.disks.rows[host]) + "\n")

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


class Disks:
    """Each host's disk, % used, one reading a minute: what fills it and what empties it.

    web-1, web-2: logs grow with the day's traffic and are rotated (compressed) at 03:00.
    db-1: tables grow steadily, the nightly backup is dumped at 01:00 and shipped off at 01:50,
    and a weekly clean-up on Sunday morning gives some space back. worker-1: scratch files grow
    with the jobs and are purged every six hours. So the last hour shows a slope, the last day
    the daily cycle, and the last week the trend.
    """

    def __init__(self, rng: random.Random, history: int = DISK_HISTORY) -> None:
        self.rng = rng
        self.history = history
        self.rows: dict[str, deque[str]] = {h: deque(maxlen=history // DISK_SAMPLE + 1) for h in HOSTS}
        self.base = {"web-1": 31.0, "web-2": 37.0, "db-1": 58.0, "worker-1": 18.0}
        self.extra = {"web-1": 10.0, "web-2": 8.0, "db-1": 0.0, "worker-1": 0.0}  # logs, a backup, scratch
        self.last: int | None = None  # the time of the latest reading
        self._changed: set[str] = set()

    def advance(self, t: float) -> None:
        """Take every reading due up to time t (at most `history` of them, after a long pause)."""
        end = int(t) // DISK_SAMPLE * DISK_SAMPLE
        start = end - self.history if self.last is None else max(self.last + DISK_SAMPLE, end - self.history)
        for m in range(start, end + 1, DISK_SAMPLE):
            self._sample(m)
            self.last = m

    def changed(self) -> list[str]:
        """The hosts that gained readings since the last call."""
        hosts, self._changed = sorted(self._changed), set()
        return hosts

    def _sample(self, m: int) -> None:
        rng, now = self.rng, time.localtime(m)
        minute_of_day = now.tm_hour * 60 + now.tm_min
        # The day's traffic: quietest at 04:00, busiest at 16:00, lighter at weekends.
        busy = 0.55 - 0.45 * math.cos(2 * math.pi * (minute_of_day / 1440 - 4 / 24))
        busy *= 0.6 if now.tm_wday >= 5 else 1.0
        for host, rate in (("web-1", 0.022), ("web-2", 0.017)):
            self.base[host] += 0.0003  # caches and uploads creep up
            self.extra[host] += rate * busy * rng.uniform(0.5, 1.5)
            if minute_of_day == 3 * 60:
                self.extra[host] *= 0.15  # logrotate compresses yesterday's logs
        self.base["db-1"] += 0.0006 + 0.0008 * busy
        if now.tm_wday == 6 and minute_of_day == 4 * 60:
            self.base["db-1"] -= 3.0  # the weekly VACUUM FULL
        if 60 <= minute_of_day < 90:
            self.extra["db-1"] += 0.3 * rng.uniform(0.8, 1.2)  # the backup dump being written
        elif minute_of_day == 110:
            self.extra["db-1"] = 0.0  # shipped to object storage and deleted
        self.extra["worker-1"] += 0.01 + 0.05 * busy * rng.expovariate(1.0)
        if minute_of_day % 360 == 0:
            self.extra["worker-1"] = 0.0  # the scratch purge, four times a day
        for host in HOSTS:
            used = self.base[host] + self.extra[host] + rng.gauss(0, 0.04)
            self.rows[host].append(f"{m},{min(99.9, max(0.0, used)):.2f}")
            self._changed.add(host)


def _publish(path: Path, text: str) -> None:
    temp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    # No fsync: after a crash the data is simply simulated afresh.
    temp.write_text(text)
    os.replace(temp, path)


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
