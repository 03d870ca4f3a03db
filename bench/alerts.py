"""What alerts cost the daemon: its CPU per render with an alert on and off, through a burst of errors.

    python bench/alerts.py [--charts N] [--failures N] [--rounds N]   # defaults 10,000, 1,000 and 2
    python bench/alerts.py --judge [--charts N]                      # the judge alone, in this process

One family (`foreach = "data/c*.txt"`) of N tiny charts (a 40 x 20 px line), under `plotboard run`
with 2 workers; with alerts on, one `[[alerts]]` whose webhook is a receiver in this process
(http.server on 127.0.0.1) following every chart (`group_wait = "10s"`). After the cold pass
(every chart ok in status.json; the variants share one board, so only the first run renders it
cold: the alert is added to or removed from the board file between runs), a burst: --failures files are rewritten (renamed into place) so
that their plots raise, then, once status.json shows them all in error and group_wait has passed
(12 s, with alerts off too), rewritten good again, until every chart is ok again and 12 s more. The daemon's CPU is also given for the rendering phases alone
(the bursts, without the two 12 s waits in which messages are sent and the daemon is otherwise idle). Measured over the burst: the daemon process's own CPU time (user +
system, not its workers': the renders themselves are the same either way), the renders it
published (status.json's renders + failures), and the webhook requests received. The two
variants alternate, --rounds times each. Raw figures: bench/results/alerts-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import run as harness  # noqa: E402  machine(), loadavg()
from scale import env  # noqa: E402

PLOT = '''def tiny(fig, inputs, **params):
    text = open(inputs[0]).read()
    if "fail" in text:
        raise ValueError("told to fail")
    fig.add_subplot().plot([1, 2, len(text)])
'''


class Receiver:
    """Counts the webhook's requests and events."""

    def __init__(self) -> None:
        self.requests = self.events = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests += 1
                receiver.events += len(body["events"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_board(folder: Path, n: int) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "plots.py").write_text(PLOT)
    for i in range(n):
        (folder / "data" / f"c{i:05d}.txt").write_text("good\n")
    return set_alert(folder / "plotboard.toml", None)


def set_alert(board: Path, url: str | None) -> Path:
    """The board file with (url) or without (None) the alert: alerts are no render setting, so
    nothing renders again for it."""
    text = ('[board]\ntitle = "bench"\nworkers = 2\n[defaults]\nsize = [1, 0.5]\ndpi = 40\nhidpi = false\n'
            '[[charts]]\nname = "c{stem}"\nforeach = "data/c*.txt"\ninputs = ["{path}"]\nplot = "plots:tiny"\n')
    if url:
        text += f'[[alerts]]\nname = "ops"\nwebhook = "{url}"\ngroup_wait = "10s"\n'
    board.write_text(text)
    return board


def charts(board: Path) -> list[dict]:
    try:
        return json.loads((board.parent / "public" / "status.json").read_text())["charts"]
    except (OSError, ValueError, KeyError):
        return []


def wait(board: Path, proc: subprocess.Popen, test, what: str, timeout: float = 3600) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited ({proc.returncode}) waiting for {what}")
        found = charts(board)
        if found and test(found):
            return found
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def seconds(times) -> float:
    return times.user + times.system


def settle(receiver: Receiver | None, events: int) -> None:
    """Let group_wait (10 s) pass, the same with alerts off, and the receiver get `events`."""
    time.sleep(12)
    deadline = time.monotonic() + 120
    while receiver and receiver.events < events and time.monotonic() < deadline:
        time.sleep(0.2)


def one(board: Path, n: int, failures: int, alerts: bool) -> dict:
    receiver = Receiver() if alerts else None
    folder = board.parent
    set_alert(board, receiver.url if receiver else None)
    log = open(folder / "run.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board)], cwd=folder, env=env(),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait(board, proc, lambda cs: len(cs) == n and all(c["state"] == "ok" for c in cs), "the cold pass")
        time.sleep(12)  # the start's group_wait: the alerts' first look at every chart, outside the burst
        me = psutil.Process(proc.pid)
        done = sum(c["renders"] + c["failures"] for c in charts(board))
        cpu, wall, load = me.cpu_times(), time.monotonic(), harness.loadavg()
        names = sorted((folder / "data").iterdir())[:failures]
        for path in names:
            write(path, "fail\n")
        wait(board, proc, lambda cs: sum(c["state"] == "error" for c in cs) == failures, "the burst of errors")
        phases = [seconds(me.cpu_times()) - seconds(cpu)]
        mark = seconds(me.cpu_times())
        settle(receiver, failures)  # the errors' messages (a trouble fixed within group_wait is not sent)
        rest = [seconds(me.cpu_times()) - mark]
        mark = seconds(me.cpu_times())
        for path in names:
            write(path, "good again\n")
        found = wait(board, proc, lambda cs: all(c["state"] == "ok" for c in cs), "every chart ok again")
        phases.append(seconds(me.cpu_times()) - mark)
        mark = seconds(me.cpu_times())
        settle(receiver, 2 * failures)
        rest.append(seconds(me.cpu_times()) - mark)
        after = me.cpu_times()
        renders = sum(c["renders"] + c["failures"] for c in found) - done
        used = (after.user + after.system) - (cpu.user + cpu.system)
        return {"alerts": alerts, "charts": n, "failures": failures, "renders": renders, "daemon_cpu_s": used,
                "cpu_per_render_ms": 1000 * used / renders, "wall_s": time.monotonic() - wall,
                "rendering_cpu_s": sum(phases), "settling_cpu_s": sum(rest),
                "rendering_cpu_per_render_ms": 1000 * sum(phases) / renders,
                "requests": receiver.requests if receiver else None, "events": receiver.events if receiver else None,
                "load_before": load, "load_after": harness.loadavg()}
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
        if receiver:
            receiver.close()


def judge_cost(n: int, top: Path) -> float:
    """CPU microseconds the judge spends per render on a board of n charts (one alert): a record
    changed, the loop's turn (tick) and its timeout (next_deadline), in this process."""
    sys.path.insert(0, str(REPO))
    import tomli

    from renderer.alerts.judge import Judge
    from renderer.board.config import board_from_data
    from renderer.store.records import ChartRecord

    board_file = set_alert(make_board(top / "judge", n), "http://127.0.0.1:9/x")
    board = board_from_data(board_file, tomli.loads(board_file.read_text()))
    now = time.time()
    records = {c.name: ChartRecord(rendered_at=now) for c in board.charts}
    judge = Judge(board, records, {}, now)
    names = [c.name for c in board.charts]
    started = time.process_time()
    for k in range(2 * n):
        rec = records[names[k % n]]
        rec.error, rec.failed_at, rec.consecutive_failures = ("ValueError: x", now, 1) if k < n else (None, None, 0)
        judge.changed(names[k % n], now)
        judge.tick(now)
        judge.next_deadline()
        now += 0.001
    return (time.process_time() - started) / (2 * n) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=int, default=10_000)
    parser.add_argument("--failures", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--judge", action="store_true", help="only the judge's CPU per render, in this process")
    args = parser.parse_args()
    if args.judge:
        with tempfile.TemporaryDirectory(prefix="plotboard-bench-alerts-") as top:
            print(f"the judge: {judge_cost(args.charts, Path(top)):.1f} µs of CPU per render "
                  f"({args.charts:,} charts, every chart failing once, then recovering)")
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="plotboard-bench-alerts-") as top:
        board = make_board(Path(top) / "board", args.charts)  # the first run's cold pass renders it once
        for r in range(args.rounds):
            for alerts in (False, True):
                run = one(board, args.charts, args.failures, alerts)
                runs.append(run)
                print(f"round {r + 1} alerts {'on ' if alerts else 'off'}: {run['renders']} renders, daemon "
                      f"{run['daemon_cpu_s']:.2f} s CPU, {run['cpu_per_render_ms']:.3f} ms/render "
                      f"({run['rendering_cpu_s']:.2f} s rendering, {run['rendering_cpu_per_render_ms']:.3f} ms/render; "
                      f"{run['settling_cpu_s']:.2f} s in the 2 x 12 s waits), "
                      f"{run['wall_s']:.0f} s, requests {run['requests']}, events {run['events']}, "
                      f"load {run['load_before']} -> {run['load_after']}", flush=True)
    on = [r["cpu_per_render_ms"] for r in runs if r["alerts"]]
    off = [r["cpu_per_render_ms"] for r in runs if not r["alerts"]]
    ratio = (sum(on) / len(on)) / (sum(off) / len(off))
    print(f"daemon CPU per render, alerts on / off: {sum(on) / len(on):.3f} / {sum(off) / len(off):.3f} ms = {ratio:.3f}")
    on_r = [r["rendering_cpu_per_render_ms"] for r in runs if r["alerts"]]
    off_r = [r["rendering_cpu_per_render_ms"] for r in runs if not r["alerts"]]
    print(f"the same while rendering only: {sum(on_r) / len(on_r):.3f} / {sum(off_r) / len(off_r):.3f} ms = "
          f"{(sum(on_r) / len(on_r)) / (sum(off_r) / len(off_r)):.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"alerts-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": harness.machine(), "runs": runs, "ratio": ratio}, indent=1))
    print(f"raw figures: {out}")


if __name__ == "__main__":
    main()
