"""What alerts cost the daemon: its CPU per render with an alert on and off, through a burst of errors.

    python bench/alerts.py [--charts N] [--failures N] [--rounds N]   # defaults 10,000, 1,000 and 3
    python bench/alerts.py --judge [--charts N]                      # the judge alone, in this process
    python bench/alerts.py --pages [--charts N]     # a write of the pages for the alerts' counts, in this process
    python bench/alerts.py --keep DIR ...       # the two boards kept in DIR and reused by a later run
    PLOTBOARD_SRC=OTHER_TREE python bench/alerts.py ...   # the daemons run another source tree (a baseline)

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
import contextlib
import json
import os
import signal
import statistics
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
    if (folder / "plotboard.toml").exists() and len(list((folder / "data").iterdir())) == n:
        return folder / "plotboard.toml"  # --keep: a board of an earlier run, rendered already
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


def thread_cpu(me: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in me.threads()}


def split(me: psutil.Process, before: dict[int, float]) -> tuple[float, float]:
    """CPU seconds since `before`: the main (loop) thread's, the other threads' (senders, server...)."""
    now = thread_cpu(me)
    main = now.get(me.pid, 0.0) - before.get(me.pid, 0.0)
    rest = sum(v - before.get(k, 0.0) for k, v in now.items() if k != me.pid)
    return main, rest


def one(board: Path, n: int, failures: int, alerts: bool, together: threading.Barrier | None = None,
        profile: Path | None = None) -> dict:
    """One run of one variant; `together` lines the phases up with a run of the other variant on
    another board; `profile` runs the daemon under bench/profiled_daemon.py, profiled in the burst."""
    receiver = Receiver() if alerts else None
    folder = board.parent
    set_alert(board, receiver.url if receiver else None)
    log = open(folder / "run.log", "a")
    started_at = log.tell()
    cmd = [sys.executable, "-m", "renderer", "run", "-c", str(board)]
    if profile:
        cmd[1:3] = [str(BENCH / "profiled_daemon.py"), str(profile)]
    proc = subprocess.Popen(cmd, cwd=folder, env=env(), stdout=log, stderr=subprocess.STDOUT)
    meet = together.wait if together else (lambda: None)
    try:
        # The daemon's own start first ("run:" is logged once it has loaded the records and written
        # the pages): a kept board's status.json shows every chart ok before it has even started,
        # and a start (O(charts)) must not fall into the burst.
        wait(board, proc, lambda cs: "run: " in (folder / "run.log").read_text()[started_at:], "the daemon's start")
        wait(board, proc, lambda cs: len(cs) == n and all(c["state"] == "ok" for c in cs), "the cold pass")
        time.sleep(12)  # the start's group_wait: the alerts' first look at every chart, outside the burst
        me = psutil.Process(proc.pid)
        meet()  # both variants' bursts start together
        if profile:
            proc.send_signal(signal.SIGUSR1)
        done = sum(c["renders"] + c["failures"] for c in charts(board))
        cpu, wall, load, threads = me.cpu_times(), time.monotonic(), harness.loadavg(), thread_cpu(me)
        names = sorted((folder / "data").iterdir())[:failures]
        for path in names:
            write(path, "fail\n")
        wait(board, proc, lambda cs: sum(c["state"] == "error" for c in cs) == failures, "the burst of errors")
        phases = [seconds(me.cpu_times()) - seconds(cpu)]
        mark = seconds(me.cpu_times())
        settle(receiver, failures)  # the errors' messages (a trouble fixed within group_wait is not sent)
        rest = [seconds(me.cpu_times()) - mark]
        meet()  # and their recoveries
        mark = seconds(me.cpu_times())
        for path in names:
            write(path, "good again\n")
        found = wait(board, proc, lambda cs: all(c["state"] == "ok" for c in cs), "every chart ok again")
        phases.append(seconds(me.cpu_times()) - mark)
        mark = seconds(me.cpu_times())
        settle(receiver, 2 * failures)
        rest.append(seconds(me.cpu_times()) - mark)
        after = me.cpu_times()
        main_cpu, other_cpu = split(me, threads)
        if profile:
            proc.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 60
            while not profile.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        renders = sum(c["renders"] + c["failures"] for c in found) - done
        used = (after.user + after.system) - (cpu.user + cpu.system)
        return {"alerts": alerts, "charts": n, "failures": failures, "renders": renders, "daemon_cpu_s": used,
                "cpu_per_render_ms": 1000 * used / renders, "wall_s": time.monotonic() - wall,
                # the burst's own phases, without the wait at the barrier for the other daemon's
                # errors (an idle daemon's CPU, charged to whichever got through its errors first)
                "burst_cpu_per_render_ms": 1000 * (sum(phases) + sum(rest)) / renders,
                "main_thread_cpu_s": main_cpu, "other_threads_cpu_s": other_cpu,
                "rendering_cpu_s": sum(phases), "settling_cpu_s": sum(rest),
                "rendering_cpu_per_render_ms": 1000 * sum(phases) / renders,
                "requests": receiver.requests if receiver else None, "events": receiver.events if receiver else None,
                "load_before": load, "load_after": harness.loadavg()}
    finally:
        if together:
            together.abort()  # a failed run does not leave the other waiting
        proc.terminate()
        proc.wait(60)
        log.close()
        if receiver:
            receiver.close()


def pair(boards: tuple[Path, Path], n: int, failures: int, first_on: bool,
         profiles: tuple[Path, Path] | None = None) -> list[dict]:
    """Both variants at once, each with its own daemon on its own board (boards[0] gets the one
    started first), their bursts started together, so that the machine's load hits both alike."""
    together = threading.Barrier(2, timeout=3600)
    order = (True, False) if first_on else (False, True)
    out: list[dict | BaseException] = [None, None]

    def go(k: int) -> None:
        try:
            out[k] = one(boards[k], n, failures, order[k], together, profiles[k] if profiles else None)
        except BaseException as exc:  # noqa: BLE001  reported below
            out[k] = exc

    threads = [threading.Thread(target=go, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    for r in out:
        if isinstance(r, BaseException):
            raise SystemExit(f"a run failed: {r!r}")
    return out  # type: ignore[return-value]


def top_functions(stats_file: Path, limit: int = 40) -> dict[str, float]:
    """Cumulative seconds per function (file:line(name)) from a pstats file."""
    import pstats

    st = pstats.Stats(str(stats_file))
    return {f"{Path(f).name}:{line}({name})": ct for (f, line, name), (cc, nc, tt, ct, callers) in st.stats.items()}


def compare_profiles(off: Path, on: Path, renders: tuple[int, int], limit: int = 30) -> list[tuple[str, float, float]]:
    """Functions by how much more cumulative time per render they took with alerts on (µs)."""
    a, b = top_functions(off), top_functions(on)
    rows = [(k, 1e6 * a.get(k, 0.0) / renders[0], 1e6 * b.get(k, 0.0) / renders[1]) for k in set(a) | set(b)]
    rows.sort(key=lambda r: r[2] - r[1], reverse=True)
    return rows[:limit]


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


def pages_cost(n: int, top: Path, repeat: int = 5) -> tuple[float, float]:
    """CPU milliseconds of one write of the pages on a board of n charts (one alert), as the
    daemon makes it (renderer.daemon.pagekeeper): (one chart's record changed, only status.json's
    `alerts` changed: a message sent), each the median of `repeat` writes; PLOTBOARD_SRC as for the daemons."""
    sys.path.insert(0, os.environ.get("PLOTBOARD_SRC", str(REPO)))
    import tomli

    from renderer.board.config import board_from_data
    from renderer.daemon.pagekeeper import PageKeeper
    from renderer.store.records import ChartRecord

    board_file = set_alert(make_board(top / "pages", n), "http://127.0.0.1:9/x")
    board = board_from_data(board_file, tomli.loads(board_file.read_text()))
    now = time.time()
    records = {c.name: ChartRecord(rendered_at=now, hash="ab" * 8, renders=1, files=[f"{c.name}.png"])
               for c in board.charts}
    pages, sent = PageKeeper(), [0]
    pages.alerts = lambda: [{"name": "ops", "sent": sent[0], "failed": 0, "last_error": None, "last_sent_at": None}]
    pages.write(board, records, now)
    one, alerts = [], []
    for _ in range(repeat):
        records[board.charts[5].name].renders += 1
        pages.batch.dirty(now, board.charts[5].name)
        started = time.process_time()
        pages.write(board, records, now)
        one.append(time.process_time() - started)
        sent[0] += 1
        pages.batch.dirty(now)
        started = time.process_time()
        pages.write(board, records, now)
        alerts.append(time.process_time() - started)
    return 1000 * statistics.median(one), 1000 * statistics.median(alerts)


def report(run: dict, label: str) -> None:
    print(f"{label} alerts {'on ' if run['alerts'] else 'off'}: {run['renders']} renders, daemon "
          f"{run['daemon_cpu_s']:.2f} s CPU (loop thread {run['main_thread_cpu_s']:.2f} s, other threads "
          f"{run['other_threads_cpu_s']:.2f} s), {run['cpu_per_render_ms']:.3f} ms/render, "
          f"{run['burst_cpu_per_render_ms']:.3f} without the wait for the other daemon "
          f"({run['rendering_cpu_s']:.2f} s rendering, {run['rendering_cpu_per_render_ms']:.3f} ms/render; "
          f"{run['settling_cpu_s']:.2f} s in the 2 x 12 s waits), "
          f"{run['wall_s']:.0f} s, requests {run['requests']}, events {run['events']}, "
          f"load {run['load_before']} -> {run['load_after']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=int, default=10_000)
    parser.add_argument("--failures", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the two boards in this folder, and reuse them if there "
                        "(a board of 10,000 charts takes long to render cold on a loaded machine)")
    parser.add_argument("--judge", action="store_true", help="only the judge's CPU per render, in this process")
    parser.add_argument("--profile", action="store_true",
                        help="one round, both daemons under cProfile in the burst: the functions the alerts add")
    parser.add_argument("--pages", action="store_true",
                        help="only the CPU of a write of the pages for an alert's counts, in this process")
    args = parser.parse_args()
    if args.pages:
        with tempfile.TemporaryDirectory(prefix="plotboard-bench-alerts-") as top:
            one, alerts = pages_cost(args.charts, Path(top))
            print(f"a write of the pages ({args.charts:,} charts): {one:.1f} ms of CPU for one chart's change, "
                  f"{alerts:.1f} ms for the alerts' counts alone")
        return
    if args.judge:
        with tempfile.TemporaryDirectory(prefix="plotboard-bench-alerts-") as top:
            print(f"the judge: {judge_cost(args.charts, Path(top)):.1f} µs of CPU per render "
                  f"({args.charts:,} charts, every chart failing once, then recovering)")
        return
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime('%Y%m%d-%H%M%S')
    rounds = []
    with (contextlib.nullcontext(args.keep) if args.keep else
          tempfile.TemporaryDirectory(prefix="plotboard-bench-alerts-")) as top:
        boards = (make_board(Path(top) / "a", args.charts), make_board(Path(top) / "b", args.charts))
        if args.profile:
            profiles = (RESULTS / f"alerts-{stamp}-a.prof", RESULTS / f"alerts-{stamp}-b.prof")
            runs = pair(boards, args.charts, args.failures, False, profiles)
            for run in runs:
                report(run, "profiled")
            print("cumulative µs per render in the loop thread, alerts off / on, most added first:")
            for name, off, on in compare_profiles(profiles[0], profiles[1], (runs[0]["renders"], runs[1]["renders"])):
                print(f"  {on - off:9.1f}  {off:9.1f} {on:9.1f}  {name}")
            print(f"profiles: {profiles[0]} (off), {profiles[1]} (on)")
            return
        for r in range(args.rounds):
            # the variants swap boards and which starts first each round; alerts are no render
            # setting, so only the first round's cold passes render
            runs = pair(boards, args.charts, args.failures, first_on=r % 2 == 1)
            on, off = (runs[0], runs[1]) if runs[0]["alerts"] else (runs[1], runs[0])
            ratio = on["burst_cpu_per_render_ms"] / off["burst_cpu_per_render_ms"]
            ratio_r = on["rendering_cpu_per_render_ms"] / off["rendering_cpu_per_render_ms"]
            for run in runs:
                report(run, f"round {r + 1}")
            print(f"round {r + 1}: on / off = {ratio:.3f} (rendering phases only {ratio_r:.3f})", flush=True)
            rounds.append({"runs": runs, "ratio": ratio, "rendering_ratio": ratio_r})
    ratios = [r["ratio"] for r in rounds]
    median = statistics.median(ratios)
    median_r = statistics.median(r["rendering_ratio"] for r in rounds)
    print(f"daemon CPU per render, alerts on / off, per round: {', '.join(f'{x:.3f}' for x in ratios)}; "
          f"median {median:.3f} (rendering phases only {median_r:.3f})")
    out = RESULTS / f"alerts-{stamp}.json"
    out.write_text(json.dumps({"machine": harness.machine(), "charts": args.charts, "failures": args.failures,
                               "rounds": rounds, "median_ratio": median, "median_rendering_ratio": median_r},
                              indent=1))
    print(f"raw figures: {out}")

if __name__ == "__main__":
    main()
