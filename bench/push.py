"""The `push` benchmark of bench/run.py (issue 27): an open page told by the daemon's /events,
against the same page polling, in the same run.

    python bench/run.py push            # ~5 min
    python bench/run.py push --quick    # fewer changes, shorter idle windows

Glass to glass as bench/fleet.py measures it (a 2-chart board with refresh = "1s", the data file
renamed into place, Python's clock just after os.replace, to the new <img> shown in Chromium
behind deploy/nginx.conf, the page's clock put on Python's by the shortest of 10 round trips),
twice: the baseline, the daemon without --serve (nginx answers /events 502, the page polls every
second as before), and push, the daemon with --serve behind nginx (the page waits for its
stream to open, `#board[data-pushed]`). Between changes a random pause of 0-1 s, so that a
polled write lands anywhere in the poll cycle.

An idle viewer's bytes per second, nothing changing: what nginx logged for the page's requests
in the window ($bytes_sent), plus, with push, the bytes a raw client of /events through the same
nginx received in the same window (a stream's request is logged only when it ends: its bytes
are counted at the client, chunked framing included).

200 open pages at rest: what 200 /events streams add to the daemon's own process CPU, over a
window with them open against the same window just before with none, the same daemon, once it
is at rest (the glass-to-glass rounds' tail over: at_rest). The streams connect to the daemon
directly (through nginx each would take two of the 256 worker connections tests/browser.py
gives it); the daemon's side is the same either way.
"""

from __future__ import annotations

import random
import shutil
import socket
import statistics
import threading
import time
from types import ModuleType
from typing import Any

from browser import free_port, launch_chromium
from daemon_helpers import Daemon, wait_for
from fleet import (
    OBSERVE_SWAPS, STAMP_LOADS, VIEWPORT, LoggingNginx, all_rendered, clock_offset, cpu_s, load_note, make_fleet,
    open_board, stop, swaps_shown, traffic, wait_rest,
)

PUSHED = "() => document.getElementById('board').hasAttribute('data-pushed')"
STREAMS = 200


class StreamReader:
    """A raw client of /events that counts the bytes it receives after its headers."""

    def __init__(self, port: int, path: str = "/events") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"{path}: the stream ended before its headers")
            head += chunk
        self.status = head.split(b" ", 2)[1]
        self.received = len(head.partition(b"\r\n\r\n")[2])
        self.events: list[float] = []  # time.time() of each chunk holding an event
        self._stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.sock.settimeout(1.0)
        while not self._stop:
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.received += len(chunk)
            if b"data:" in chunk:
                self.events.append(time.time())

    def close(self) -> None:
        self._stop = True
        self.thread.join()
        self.sock.close()


def glass(run: Any, h: ModuleType, pushed: bool) -> dict[str, Any]:
    """One board, one daemon (with --serve when `pushed`), nginx, Chromium: idle bytes, then
    data written -> new image shown."""
    from playwright.sync_api import sync_playwright

    count, warm = run.n(20, 8), 2
    idle_s = run.n(65, 20)  # two of the daemon's 30 s heartbeats
    root = run.folder("push-" + ("push" if pushed else "poll"))
    board = make_fleet(root / "board", 2, groups=None, refresh="1s")
    rng = random.Random(27)
    port = free_port()
    daemon = Daemon(board, *(["--serve", str(port)] if pushed else []), env=h.env(), start_timeout=120)
    out: dict[str, Any] = {}
    try:
        public = board.parent / "public"
        wait_for(lambda: daemon.alive() and all_rendered(public / "status.json", 2), 120, "2 charts rendered")
        h.wait_quiet([public / "status.json"], 1.5)
        with LoggingNginx(public, root / "nginx", daemon=port) as nginx, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(STAMP_LOADS)
                page, _ = open_board(context, nginx.url, nginx)
                if pushed:
                    page.wait_for_function(PUSHED, timeout=60_000)
                page.evaluate(OBSERVE_SWAPS)
                offset, half_rtt = clock_offset(page)
                out["clock"] = {"page_minus_python_s": offset, "half_round_trip_s": half_rtt}

                reader = StreamReader(nginx.port) if pushed else None
                before = h.loadavg()
                since = nginx.offset()
                start_bytes = reader.received if reader else 0
                t0 = time.perf_counter()
                time.sleep(idle_s)
                elapsed = time.perf_counter() - t0
                stream_bytes = (reader.received - start_bytes) if reader else 0
                idle = traffic(nginx.entries(since))
                out["idle"] = {**idle, "seconds": elapsed, "stream_bytes": stream_bytes,
                               "load": [before, h.loadavg()],
                               "per_s": (idle["sent"] + stream_bytes) / elapsed}

                before = h.loadavg()
                samples, served, told = swaps_shown(page, nginx, board, offset, rng, count, warm,
                                                    reader.events if reader else None)
                if reader:
                    reader.close()
                out.update(samples_ms=samples, image_served_ms=served, event_ms=told, load=[before, h.loadavg()],
                           still_pushed=bool(page.evaluate(PUSHED)))
                context.close()
            finally:
                browser.close()
        if pushed:
            out["streams"] = streams_cost(run, h, daemon, port)
    finally:
        stop(daemon)
        shutil.rmtree(root, ignore_errors=True)
    return out


REST_PCT, REST_SLICE_S, REST_LIMIT_S = 0.5, 5.0, 180.0


def cpu_pct(proc: Any, seconds: float) -> float:
    """The process's own CPU over the next `seconds`, in % of a core."""
    c0, t0 = cpu_s(proc), time.perf_counter()
    time.sleep(seconds)
    return 100 * (cpu_s(proc) - c0) / (time.perf_counter() - t0)


def at_rest(h: ModuleType, daemon: Daemon, me: Any) -> dict[str, Any]:
    """Wait for the daemon to be at rest: its outputs still and its first checks done
    (fleet.wait_rest), then its own CPU over a REST_SLICE_S slice at most REST_PCT% of a core
    (the tail of the glass-to-glass rounds over), for REST_LIMIT_S at the most."""
    t0 = time.monotonic()
    wait_rest(h, daemon)
    slices: list[float] = []
    while time.monotonic() - t0 < REST_LIMIT_S:
        slices.append(round(cpu_pct(me, REST_SLICE_S), 2))
        if slices[-1] <= REST_PCT:
            break
    return {"waited_s": time.monotonic() - t0, "slices_pct": slices, "settled": slices[-1] <= REST_PCT}


def streams_cost(run: Any, h: ModuleType, daemon: Daemon, port: int) -> dict[str, Any]:
    """The daemon's own CPU over a window without streams once it is at rest (at_rest), then over
    the same window with STREAMS open: what the streams add is the difference."""
    import psutil

    window = run.n(60, 20)
    me = psutil.Process(daemon.proc.pid)
    rest = at_rest(h, daemon, me)

    none = cpu_pct(me, window)
    socks = []
    try:
        for _ in range(STREAMS):
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            if not s.recv(64).startswith(b"HTTP/1.0 200"):
                raise RuntimeError("an /events stream was refused")
        rss_before = me.memory_info().rss
        opened = cpu_pct(me, window)
        rss = me.memory_info().rss
    finally:
        for s in socks:
            s.close()
    return {"window_s": window, "none_pct": none, "streams_pct": opened, "added_pct": opened - none,
            "streams": STREAMS, "rest": rest, "rss_mib": rss / 2**20, "rss_growth_kib": (rss - rss_before) / 1024}


def push(run: Any, h: ModuleType) -> None:
    raw: dict[str, Any] = {}
    run.raw["push"] = raw
    raw["poll"] = poll = glass(run, h, pushed=False)
    raw["push"] = pushed = glass(run, h, pushed=True)
    s, b = h.stats(pushed["samples_ms"]), h.stats(poll["samples_ms"])
    run.row("push", "glass to glass through nginx + Chromium, 2 charts, refresh 1s: data renamed in -> new image "
            "shown, with /events", s, b, "polling every second (no --serve)", "ms", s["median"] / b["median"],
            "p50 <= 120 ms, p95 <= 250 ms", s["median"] <= 120 and s["p95"] <= 250,
            note=f"write -> event at a raw /events client through nginx p50 "
                 f"{statistics.median(pushed['event_ms']) if pushed['event_ms'] else float('nan'):.0f} ms (p95 "
                 f"{h.stats(pushed['event_ms']).get('p95', float('nan')):.0f}); write -> image served by nginx p50 {statistics.median(pushed['image_served_ms']):.0f} ms "
                 f"(polling {statistics.median(poll['image_served_ms']):.0f} ms); the page still on its stream at "
                 f"the end: {pushed['still_pushed']}; load {load_note(*pushed['load'])} (push), "
                 f"{load_note(*poll['load'])} (polling)")
    pi, bi = pushed["idle"], poll["idle"]
    run.row("push", "one idle viewer, nothing changing: bytes sent per second", {"median": pi["per_s"]},
            {"median": bi["per_s"]}, "polling every second", "B/s", pi["per_s"] / bi["per_s"], "<= 50 B/s",
            pi["per_s"] <= 50,
            note=f"push: {pi['stream_bytes']} B on the stream and {pi['requests']} requests ({pi['sent']} B) in "
                 f"{pi['seconds']:.0f} s; polling: {bi['requests']} requests in {bi['seconds']:.0f} s")
    sc = pushed["streams"]
    rest = sc["rest"]
    run.row("push", f"{sc['streams']} open /events streams at rest: what they add to the daemon's own CPU",
            {"median": sc["added_pct"]}, {"median": sc["none_pct"]}, "the same daemon at rest, no stream",
            "% of a core", None, "<= +1%", sc["added_pct"] <= 1.0,
            note=f"{sc['streams_pct']:.2f}% with the streams, {sc['none_pct']:.2f}% without, over {sc['window_s']} s "
                 f"each, after {rest['waited_s']:.0f} s waiting for the daemon to be at rest ("
                 + ("" if rest["settled"] else "it never was: ")
                 + f"{REST_SLICE_S:.0f} s slices {', '.join(f'{p:.2f}' for p in rest['slices_pct'])}%)"
                 f"; daemon RSS {sc['rss_mib']:.0f} MiB ({sc['rss_growth_kib']:+.0f} KiB over the window)")
