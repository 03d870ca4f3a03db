"""The `scale` benchmark of bench/run.py (issue 13): fleet boards of tiny charts in groups.

    python bench/run.py scale                       # 1,000, 3,000 and 10,000 charts (~25 min)
    python bench/run.py scale --sizes 1000,3000     # other sizes
    python bench/run.py scale --quick               # 1,000 charts, shorter idle windows, 8 changes

For each size N the board is N tiny charts (bench/scale.py's: size [1, 0.5], dpi 40, hidpi
false, 2 workers) in 100 groups of N/100, each chart reading its own small input file
(data/gGGG/cNNNNN.txt, 8 numbers) so that rewriting one file changes one image. Two identical
copies are made: `build` renders one from nothing, `run` the other, in the same run.

Per size:
  - `run` from nothing until status.json lists every chart with a render (wall time from the
    process start), beside `build`'s wall time on the same board: ratio run/build;
  - the daemon's own process CPU (user + system, psutil; workers not counted) from its start
    until then, divided by N;
  - idle CPU of the daemon (its own process, and its whole tree in the note) over an idle
    window once its outputs have been quiet for 3 s and it has run 65 s: its periodic check
    (check_every, 1 minute) has then been once through every chart, and checks cost a stat per
    file from then on; the CPU it used before that, right after the renders, is in the note;
  - no-op `build` (a second build of the built copy: nothing to render), whole process.
At the largest size, with the daemon still running, nginx (deploy/nginx.conf, access log with
$bytes_sent) and Chromium (1920x1080, tests/browser.py):
  - opening index.html: "loaded" = the load event and every image intersecting the viewport
    complete with a decoded size, timed in the page from navigation start (the later of
    loadEventEnd and the last such image's load event); bytes of HTML/JSON/CSS/JS and image
    requests counted from nginx's log until its log has been quiet for 2 s after loaded;
  - the open page for 10 s with nothing changing: bytes nginx sent;
  - when index.html does not show the chart to change (a group index), the page that does
    (page_showing: its group's link) opened afresh and measured the same two ways;
  - one chart changed (its input rewritten by os.replace while it is on screen): bytes nginx
    sent from the write until the page shows the new image.
Then glass to glass on a 2-chart board with refresh = "1s": the data file written (time.time()
in Python just after os.replace) to the new image shown in the page (a MutationObserver sees the
new <img> inserted; the time is taken in the next animation frame as performance.timeOrigin +
performance.now(), put on Python's clock by an offset measured with the shortest of 10
evaluate() round trips), p50 over the changes, and the bytes/s nginx sends one idle viewer.

Bytes are nginx's $bytes_sent (response status line, headers and body as sent, gzipped where
deploy/nginx.conf gzips): what DevTools calls "transferred" for a response. Request bytes
($request_length) are in the notes, not the figures.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

from browser import POLL_URL, Nginx, launch_chromium
from daemon_helpers import Daemon, wait_for
from scale import rendered as all_rendered  # status.json lists n charts, each rendered

SIZES = [1000, 3000, 10_000]
QUICK_SIZES = [1000]
GROUPS = 100
VIEWPORT = {"width": 1920, "height": 1080}
KB = 1000  # figures in kB of 1,000 bytes

# bench/scale.py's tiny chart, drawn from its input file (8 numbers on a fixed 0-10 scale, so
# that different numbers give a different image).
PLOT = """
def tiny(fig, inputs, **params):
    values = [float(x) for x in inputs[0].read_text().split()] if inputs else [1, 3, 2]
    ax = fig.add_subplot()
    ax.plot(values)
    ax.set_ylim(0, 10)
"""


def pattern(k: int) -> str:
    """The input file's text for value k: 8 points, high where k's bit is set (k < 256 all differ)."""
    return " ".join("8" if (k >> j) & 1 else "2" for j in range(8)) + "\n"


def write_input(path: Path, text: str) -> None:
    """The careful producer: a hidden temp file in the same folder, then os.replace."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def chart_name(i: int) -> str:
    return f"c{i:05d}"


def group_name(g: int) -> str:
    return f"g{g:03d}"  # its id on the page (slug) is the same


def make_fleet(folder: Path, n: int, groups: int | None = GROUPS, refresh: str | None = None) -> Path:
    """N tiny charts, each with its own input file, in `groups` groups of N/groups (None: no group)."""
    folder.mkdir(parents=True)
    (folder / "plots.py").write_text(PLOT)
    per = max(1, n // groups) if groups else n
    parts = ['[board]\ntitle = "fleet"\noutput = "public"\nworkers = 2\n'
             + (f'refresh = "{refresh}"\n' if refresh else ""),
             '[defaults]\nsize = [1, 0.5]\ndpi = 40\nhidpi = false\nplot = "plots:tiny"\n']
    made: set[Path] = set()
    for i in range(n):
        g = min(i // per, groups - 1) if groups else None
        sub = folder / "data" / (group_name(g) if g is not None else "")
        if sub not in made:
            sub.mkdir(parents=True, exist_ok=True)
            made.add(sub)
        (sub / f"{chart_name(i)}.txt").write_text(pattern(i % 255))
        rel = (sub / f"{chart_name(i)}.txt").relative_to(folder).as_posix()
        parts.append(f'[[charts]]\nname = "{chart_name(i)}"\ninputs = ["{rel}"]\n'
                     + (f'group = "{group_name(g)}"\n' if g is not None else ""))
    board = folder / "plotboard.toml"
    board.write_text("\n".join(parts))
    return board


def input_of(board: Path, i: int, groups: int | None = GROUPS, n: int = 0) -> Path:
    if not groups:
        return board.parent / "data" / f"{chart_name(i)}.txt"
    per = max(1, n // groups)
    return board.parent / "data" / group_name(min(i // per, groups - 1)) / f"{chart_name(i)}.txt"


# -- build and run ----------------------------------------------------------------------------


def time_build(h: ModuleType, board: Path, expect: int | None) -> dict[str, float]:
    """Wall seconds and CPU seconds (the build and every process below it) of one `build`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, log = h.timed_run(h.plotboard("build", "-c", str(board)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"build: (\d+) rendered, (\d+) failed", log)
    if not m or (expect is not None and (int(m.group(1)), int(m.group(2))) != (expect, 0)):
        raise RuntimeError(f"build did not render {expect} charts without failures:\n{log[-2000:]}")
    return {"wall_s": wall, "cpu_s_all": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def all_ok(index: Path, n: int) -> bool:
    """status/index.json counts n charts ok (rendered, no error) over its groups."""
    try:
        groups = json.loads(index.read_text())["groups"]
    except (OSError, ValueError, KeyError):
        return False
    return sum(g.get("counts", {}).get("ok", 0) for g in groups) >= n


def when_changed(h: ModuleType, path: Path, check: Callable[[Path], bool]) -> Callable[[], bool]:
    """A condition that reads `path` only when its inode, mtime or size changed (the harness
    shares two cores with what it measures: no parsing 3 MB ten times a second)."""
    seen: list[Any] = [object()]

    def cond() -> bool:
        sig = h.signature(path)
        if sig == seen[0]:
            return False
        seen[0] = sig
        return check(path)

    return cond


def cpu_s(proc: Any) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def tree_cpu(root: Any) -> dict[int, float]:
    import psutil

    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            out[p.pid] = cpu_s(p)
        except psutil.Error:
            pass
    return out


def start_run(h: ModuleType, board: Path, n: int) -> tuple[Daemon, dict[str, float]]:
    """`run` on a board never rendered, until status.json lists every chart with a render."""
    import psutil

    out = board.parent / "public"
    started = time.perf_counter()
    daemon = Daemon(board, env=h.env(), start_timeout=600)  # returns once it logged "run: ..."
    me = psutil.Process(daemon.proc.pid)
    ready_s, ready_cpu = time.perf_counter() - started, cpu_s(me)
    try:
        ok = when_changed(h, out / "status" / "index.json", lambda p: all_ok(p, n))
        wait_for(lambda: daemon.alive() and ok(), 120 + n * 0.2, f"{n} charts ok in status/index.json",
                 interval=0.1)
        # status.json is written after status/index.json: the figure stops when it shows them all.
        cond = when_changed(h, out / "status.json", lambda p: all_rendered(p, n))
        wait_for(lambda: daemon.alive() and cond(), 120, "status.json to list every render", interval=0.05)
        wall = time.perf_counter() - started
        cpu = cpu_s(me)
    except BaseException:
        stop(daemon)
        raise
    return daemon, {"wall_s": wall, "cpu_s_daemon": cpu, "ready_s": ready_s, "ready_cpu_s": ready_cpu}


STEADY_AFTER = 65.0  # s after the daemon's start: its periodic check (check_every, default 1m) has
# gone once through every chart, after which a check is a stat per file; before, it fingerprints them


def wait_rest(h: ModuleType, daemon: Daemon) -> dict[str, float] | None:
    """Wait until the daemon is at rest: its outputs unchanged for 3 s and STEADY_AFTER seconds
    from its start. Its own CPU while waiting for the latter (None when no wait was needed)."""
    import psutil

    out = daemon.output
    h.wait_quiet([out / "status.json", out / "status" / "index.json", out / "index.html"], 3.0, timeout=180)
    root = psutil.Process(daemon.proc.pid)
    wait = STEADY_AFTER - (time.time() - root.create_time())
    if wait <= 0:
        return None
    c0 = cpu_s(root)
    time.sleep(wait)
    return {"seconds": wait, "pct": 100 * (cpu_s(root) - c0) / wait}


def idle_cpu(h: ModuleType, daemon: Daemon, seconds: float) -> dict[str, float]:
    """CPU of the daemon (own process, and the whole tree) over `seconds` once it is at rest
    (wait_rest); what it used while waiting for that is `early`."""
    import psutil

    out = daemon.output
    early = wait_rest(h, daemon)
    root = psutil.Process(daemon.proc.pid)
    pages = [out / "index.html", out / "status.json", out / "status" / "index.json"]
    stamps = [h.signature(p) for p in pages]
    before = tree_cpu(root)
    t0 = time.perf_counter()
    per_second, last = [], before[root.pid]
    while time.perf_counter() - t0 < seconds:  # the daemon's own CPU second by second, to see its pattern
        time.sleep(min(1.0, max(0.0, seconds - (time.perf_counter() - t0))))
        now = cpu_s(root)
        per_second.append(round(1000 * (now - last)))
        last = now
    after = tree_cpu(root)
    elapsed = time.perf_counter() - t0
    own = after[root.pid] - before[root.pid]
    tree = sum(v - before.get(pid, 0.0) for pid, v in after.items())
    mem = daemon_rss(root)
    rewritten = [p.name for p, st in zip(pages, stamps) if h.signature(p) != st]
    return {"seconds": elapsed, "own_pct": 100 * own / elapsed, "tree_pct": 100 * tree / elapsed,
            "processes": len(after), "gone": len(set(before) - set(after)), "own_ms_per_second": per_second,
            "pages_rewritten": rewritten, "started_after_s": time.time() - elapsed - root.create_time(),
            "early": early, **mem}


def daemon_rss(root: Any) -> dict[str, float]:
    import psutil

    own = root.memory_info().rss
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return {"rss_own_mib": own / 2**20, "rss_tree_mib": total / 2**20}


def stop(daemon: Daemon) -> None:
    """SIGTERM, killed after 60 s; the log closed."""
    try:
        daemon.stop(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.close()


# -- nginx with bytes sent in its log ------------------------------------------------------------


LOG_LINE = re.compile(r'^(?P<msec>[\d.]+) (?P<status>\d+) (?P<sent>\d+) (?P<req>\d+) "(?P<uri>[^"]*)"$')


class LoggingNginx(Nginx):
    """tests/browser.py's nginx (the repository's deploy/nginx.conf unchanged) with an access log
    that says, per request, when it finished, its status, $bytes_sent and $request_length."""

    def __init__(self, root: Path, prefix: Path, daemon: int | None = None) -> None:
        super().__init__(root, prefix, workers=1, access_log=True, daemon=daemon)
        log = self.prefix / "access.log"
        text = self.conf.read_text()
        old = f"    access_log {log};\n"
        assert old in text, "tests/browser.py's nginx.conf changed shape"
        self.conf.write_text(text.replace(
            old, "    log_format bench '$msec $status $bytes_sent $request_length \"$request_uri\"';\n"
                 f"    access_log {log} bench;\n"))
        self.log = log

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        return self.read(since)[0]

    def read(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The requests logged after byte `since` (whole lines), and the offset after them."""
        with open(self.log, "rb") as f:
            f.seek(since)
            data = f.read()
        end = data.rfind(b"\n") + 1
        data, since = data[:end].decode(errors="replace"), since + end
        out = []
        for line in data.splitlines():
            m = LOG_LINE.match(line)
            if m:
                out.append({"t": float(m["msec"]), "status": int(m["status"]), "sent": int(m["sent"]),
                            "req": int(m["req"]), "uri": m["uri"], "path": urlsplit(m["uri"]).path})
        return out, since

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 60.0) -> None:
        """Until nginx has logged no request but the page's polls (POLL_URL) for `quiet` seconds."""
        at, since = self.offset(), time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise RuntimeError("the page never stopped making requests")
            time.sleep(0.1)
            new, at = self.read(at)
            if any(e["path"] != POLL_URL for e in new):
                since = time.monotonic()


def kind(path: str) -> str:
    if re.search(r"\.(png|svg|jpe?g|webp|gif)$", path):
        return "image"
    if path.endswith("/") or re.search(r"\.(html|json|css|js)$", path):
        return "text"
    return "other"


def traffic(entries: list[dict[str, Any]]) -> dict[str, Any]:
    text = [e for e in entries if kind(e["path"]) == "text"]
    images = [e for e in entries if kind(e["path"]) == "image"]
    return {"requests": len(entries), "sent": sum(e["sent"] for e in entries),
            "request_bytes": sum(e["req"] for e in entries),
            "text_sent": sum(e["sent"] for e in text), "text_requests": len(text),
            "image_requests": len(images), "image_sent": sum(e["sent"] for e in images),
            "statuses": sorted({e["status"] for e in entries}),
            "by_path": summarize_paths(entries)}


def summarize_paths(entries: list[dict[str, Any]]) -> dict[str, list[int]]:
    """[requests, bytes sent] per path, images lumped together."""
    out: dict[str, list[int]] = {}
    for e in entries:
        key = "*.png" if kind(e["path"]) == "image" else e["path"]
        slot = out.setdefault(key, [0, 0])
        slot[0] += 1
        slot[1] += e["sent"]
    return out


# -- the page ----------------------------------------------------------------------------------

# Before any page script: every image's load time (ms since navigation start) on the element.
# On the document: an element's load event does not reach window.
STAMP_LOADS = """
document.addEventListener("load", (e) => {
  const t = e.target;
  if (t && t.tagName === "IMG") t.__loadedAt = performance.now();
}, true);
window.__longtasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) __longtasks.push([e.startTime, e.duration]);
  }).observe({type: "longtask", buffered: true});
} catch (e) {}
"""

# Started after the page loaded (a MutationObserver during the parse of a big page would slow it):
# every <img> inserted in a card, with the epoch ms (page clock) of its insertion and of the next
# animation frame, the frame that shows it.
OBSERVE_SWAPS = """() => {
  if (window.__swaps) return;
  window.__swaps = [];
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    for (const r of records) for (const n of r.addedNodes || []) {
      if (n.tagName !== "IMG") continue;
      const card = n.closest("[data-name]");
      const e = {name: card ? card.dataset.name : "", src: n.getAttribute("src"), inserted: at, frame: 0,
                 complete: n.complete && n.naturalWidth > 0};
      __swaps.push(e);
      requestAnimationFrame(() => { e.frame = performance.timeOrigin + performance.now(); });
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""

# Loaded: the load event, and every image intersecting the viewport complete with a decoded size.
LOADED = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  if (!nav || !nav.loadEventEnd) return null;
  let last = nav.loadEventEnd, shown = 0;
  for (const i of document.images) {
    const r = i.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.bottom <= 0 || r.top >= innerHeight || r.right <= 0
        || r.left >= innerWidth) continue;
    if (!i.complete || i.naturalWidth === 0) return null;
    shown++;
    if (i.__loadedAt) last = Math.max(last, i.__loadedAt);
  }
  return {loaded_ms: last, load_event_ms: nav.loadEventEnd, dcl_ms: nav.domContentLoadedEventEnd,
          response_end_ms: nav.responseEnd, images_on_screen: shown, images: document.images.length,
          time_origin: performance.timeOrigin, checked_ms: performance.now()};
}"""


def page_showing(page: Any, name: str, group: str) -> str:
    """Bring `page` to a page that shows chart NAME and return its URL: the page itself when it
    has #chart-NAME; else the target of its link for the chart's group (a[data-group=GROUP]),
    when that link leads to another page (a group index with one page per group). Adjust here
    when the page layout changes."""
    if page.locator(f"#chart-{name}").count():
        return page.url
    link = page.locator(f'a[data-group="{group}"]')
    if link.count():
        href = link.first.get_attribute("href") or ""
        if href and not href.startswith("#"):
            page.goto(urljoin(page.url, href), wait_until="load")
            if page.locator(f"#chart-{name}").count():
                return page.url
    raise RuntimeError(f"no page found that shows chart {name} (group {group}) from {page.url}")


def chart_img(name: str) -> str:
    return f"#chart-{name} img"


def clock_offset(page: Any) -> tuple[float, float]:
    """(page clock - Python's time.time(), half the round trip) in seconds, from the shortest of
    10 round trips: performance.timeOrigin + performance.now() taken mid-way."""
    best = (float("inf"), 0.0)
    for _ in range(10):
        a = time.time()
        p = page.evaluate("() => performance.timeOrigin + performance.now()") / 1000
        b = time.time()
        if b - a < best[0]:
            best = (b - a, p - (a + b) / 2)
    return best[1], best[0] / 2


def open_board(context: Any, url: str, nginx: LoggingNginx) -> tuple[Any, dict[str, Any]]:
    """Open `url` in a new page; its load figures and the requests it made until nginx is quiet."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    since = nginx.offset()
    t0 = time.time()
    page.goto(url, wait_until="load", timeout=180_000)
    loaded = page.wait_for_function(LOADED, polling=100, timeout=180_000).json_value()
    wall_s = time.time() - t0
    nginx.wait_quiet(2.0)
    entries = nginx.entries(since)
    loaded_epoch = (loaded["time_origin"] + loaded["loaded_ms"]) / 1000
    before = [e for e in entries if e["t"] <= loaded_epoch + 0.001]
    # The page's main thread in long tasks (> 50 ms) up to now: a busy page answers late.
    tasks = page.evaluate("() => window.__longtasks || []")
    return page, {**loaded, "wall_s": wall_s, "traffic": traffic(entries),
                  "navigation_after_goto_ms": loaded["time_origin"] - 1000 * t0,
                  "long_tasks": len(tasks), "long_tasks_ms": sum(d for _, d in tasks),
                  "longest_task_ms": max((d for _, d in tasks), default=0),
                  "image_requests_by_loaded": sum(kind(e["path"]) == "image" for e in before),
                  "errors": errors}


# -- the benchmark -----------------------------------------------------------------------------


def load_note(before: list[float], after: list[float]) -> str:
    return f"load {before[0]:.2f}->{after[0]:.2f}"


def scale(run: Any, h: ModuleType) -> None:
    """Fleet boards: `run` beside `build` at each size, idle cost, no-op build; at the largest
    size the page in Chromium behind nginx; glass to glass on a 2-chart board."""
    sizes = run.sizes or (QUICK_SIZES if run.quick else SIZES)
    idle_s = run.n(30, 10)
    noop_repeat = run.n(3, 1)
    raw: dict[str, Any] = {"sizes": sizes}
    run.raw["scale"] = raw
    for n in sizes:
        big = n == max(sizes)
        figures: dict[str, Any] = raw.setdefault(str(n), {})
        cap = h.capacity()
        figures["capacity"] = cap
        root = run.folder(f"scale-{n}")
        b_board = make_fleet(root / "build", n)
        r_board = make_fleet(root / "run", n)
        before = h.loadavg()
        b = time_build(h, b_board, n)
        figures["build"] = b
        mid = h.loadavg()
        daemon, r = start_run(h, r_board, n)
        after = h.loadavg()
        figures["run"] = r
        try:
            ratio = r["wall_s"] / b["wall_s"]
            run.row("scale", f"{n:,} charts: `run` from nothing to every chart rendered", {"median": r["wall_s"]},
                    {"median": b["wall_s"]}, "`build` on the same board", "s", ratio, "<= 1.15x build",
                    ratio <= 1.15,
                    note=f"build CPU {b['cpu_s_all']:.1f} s all processes; daemon up after {r['ready_s']:.1f} s; "
                         f"cores' worth free {cap:.2f}; load {before[0]:.2f} (build) {mid[0]:.2f} (run) "
                         f"{after[0]:.2f} (end)")
            per = 1000 * r["cpu_s_daemon"] / n
            run.row("scale", f"{n:,} charts: daemon's own process CPU over those renders, per render",
                    {"median": per}, unit="ms", target="<= 1 ms", met=per <= 1.0,
                    note=f"{r['cpu_s_daemon']:.1f} CPU s from its start, {r['ready_cpu_s']:.1f} s of it before "
                         f"its 'run:' line (start-up); "
                         f"{1000 * (r['cpu_s_daemon'] - r['ready_cpu_s']) / n:.2f} ms a render after start-up")
            before = h.loadavg()
            idle = idle_cpu(h, daemon, idle_s)
            after = h.loadavg()
            figures["idle"] = idle
            early = idle["early"]
            run.row("scale", f"{n:,} charts: idle daemon CPU over {idle_s} s, everything rendered",
                    {"median": idle["own_pct"]}, unit="% of a core", target="<= 1%", met=idle["own_pct"] <= 1.0,
                    note=f"window from {idle['started_after_s']:.0f} s after the daemon's start"
                         + (f" (the {early['seconds']:.0f} s before it, right after the renders: {early['pct']:.2f}%)"
                            if early else "")
                         + f"; whole tree ({idle['processes']} processes) {idle['tree_pct']:.2f}%; "
                         f"busiest second {max(idle['own_ms_per_second'], default=0)} ms; pages rewritten meanwhile: "
                         f"{', '.join(idle['pages_rewritten']) or 'none'}; RSS daemon "
                         f"{idle['rss_own_mib']:.0f} MiB, tree {idle['rss_tree_mib']:.0f} MiB; "
                         + load_note(before, after))
            if big:
                browser_figures(run, h, r_board, daemon, n, figures)
        finally:
            stop(daemon)
        # The no-op build after the daemon stopped: nothing else of ours runs meanwhile.
        before = h.loadavg()
        noop = [time_build(h, b_board, 0)["wall_s"] for _ in range(noop_repeat)]
        after = h.loadavg()
        figures["noop_s"] = noop
        s = h.stats(noop)
        run.row("scale", f"{n:,} charts: no-op `build` (nothing changed), whole process", s, unit="s",
                target="<= 2 s (at 10,000)", met=s["median"] <= 2.0, note=load_note(before, after))
    # Deleted only now: on ext4 without a journal, files created within 30 s of many deletions
    # nearby cost far more kernel CPU (the allocator skips recently deleted inodes one by one),
    # which would weigh on the next size's figures.
    for n in sizes:
        shutil.rmtree(run.work / f"scale-{n}", ignore_errors=True)
    glass_to_glass(run, h)


def open_rows(run: Any, n: int, what: str, opened: dict[str, Any], before: list[float], after: list[float]) -> None:
    t = opened["traffic"]
    run.row("scale", f"{n:,} charts: opening {what} in Chromium 1920x1080 behind nginx, loaded",
            {"median": opened["loaded_ms"]}, unit="ms", target="<= 3,000 ms",
            met=opened["loaded_ms"] <= 3000,
            note=f"load event {opened['load_event_ms']:.0f} ms, DOMContentLoaded {opened['dcl_ms']:.0f} ms, "
                 f"HTML received {opened['response_end_ms']:.0f} ms; {opened['images_on_screen']} images on "
                 f"screen of {opened['images']}; in Python, goto() to loaded confirmed {opened['wall_s']:.1f} s "
                 f"(navigation start +{opened['navigation_after_goto_ms']:.0f} ms, confirmed in the page at "
                 f"{opened['checked_ms']:.0f} ms); long tasks on the page's main thread until quiet: "
                 f"{opened['long_tasks']}, {opened['long_tasks_ms']:.0f} ms, longest "
                 f"{opened['longest_task_ms']:.0f} ms; "
                 + load_note(before, after) + (f"; page errors {opened['errors'][:3]}" if opened["errors"] else ""))
    run.row("scale", f"{n:,} charts: opening {what}, HTML/JSON/CSS/JS sent by nginx (gzip as configured)",
            {"median": t["text_sent"] / KB}, unit="kB", target="<= 400 kB", met=t["text_sent"] <= 400 * KB,
            note=f"{t['text_requests']} requests: "
                 + ", ".join(f"{p} {v[1] / KB:.1f}" + (f" x{v[0]}" if v[0] > 1 else "")
                             for p, v in t["by_path"].items() if p != "*.png")
                 + "; until nginx logged nothing but polls for 2 s after loaded")
    run.row("scale", f"{n:,} charts: opening {what}, image requests", {"median": t["image_requests"]},
            unit="requests", target="<= 150", met=t["image_requests"] <= 150,
            note=f"{opened['image_requests_by_loaded']} of them by 'loaded'; {t['image_sent'] / KB:.1f} kB "
                 f"of images; statuses {t['statuses']}")


def idle_page(run: Any, h: ModuleType, n: int, what: str, nginx: LoggingNginx, root: Path) -> dict[str, Any]:
    """Bytes nginx sends an open page over 10 s with nothing changing (the daemon idle)."""
    before = h.loadavg()
    since = nginx.offset()
    time.sleep(10)
    quiet = traffic(nginx.entries(since))
    after = h.loadavg()
    run.row("scale", f"{n:,} charts: {what} open, 10 s with nothing changing, bytes sent",
            {"median": quiet["sent"]}, unit="B", target="<= 5,000 B", met=quiet["sent"] <= 5000,
            note=f"{quiet['requests']} requests ({quiet['request_bytes']} B of requests), statuses "
                 f"{quiet['statuses']}, refresh {board_refresh(root)}; " + load_note(before, after))
    return quiet


def browser_figures(run: Any, h: ModuleType, board: Path, daemon: Daemon, n: int, figures: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    root = board.parent
    target = 0  # chart c00000: first of the first group, at the top of the page
    name, group = chart_name(target), group_name(0)
    with LoggingNginx(root / "public", root / "nginx") as nginx, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(STAMP_LOADS)
            before = h.loadavg()
            page, opened = open_board(context, nginx.url, nginx)
            figures["open"] = opened
            open_rows(run, n, "index.html", opened, before, h.loadavg())
            figures["idle_page"] = idle_page(run, h, n, "index.html", nginx, root)

            # The page that shows the chart: index.html itself, or (a group index) its group's page,
            # then opened afresh and measured the same way.
            url = page_showing(page, name, group)
            if urlsplit(url).path not in ("/", "/index.html"):
                context.close()
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(STAMP_LOADS)
                what = f"its group's page {urlsplit(url).path}"
                before = h.loadavg()
                page, opened = open_board(context, url, nginx)
                figures["open_group_page"] = opened
                open_rows(run, n, what, opened, before, h.loadavg())
                figures["idle_group_page"] = idle_page(run, h, n, what, nginx, root)

            # One chart changed, on screen in the page that shows it.
            img = page.locator(chart_img(name)).first
            img.scroll_into_view_if_needed()
            page.wait_for_function(f"() => {{ const i = document.querySelector({json.dumps(chart_img(name))});"
                                   " return i && i.complete && i.naturalWidth > 0; }", polling=100, timeout=60_000)
            nginx.wait_quiet(2.0)
            old_src = page.locator(chart_img(name)).first.get_attribute("src")
            before = h.loadavg()
            since = nginx.offset()
            write_input(input_of(board, target, GROUPS, n), pattern(255))
            t0 = time.time()
            page.wait_for_function(
                "([sel, old]) => { const i = document.querySelector(sel);"
                " return i && i.getAttribute('src') !== old && i.complete && i.naturalWidth > 0; }",
                arg=[chart_img(name), old_src], polling=50, timeout=180_000)
            shown_s = time.time() - t0
            changed = traffic(nginx.entries(since))
            after = h.loadavg()
            figures["one_changed"] = {**changed, "shown_after_s": shown_s, "page": url}
            run.row("scale", f"{n:,} charts: an open page after one chart changed, bytes sent until it shows "
                             "the new image", {"median": changed["sent"] / KB}, unit="kB", target="<= 100 kB",
                    met=changed["sent"] <= 100 * KB,
                    note=f"{changed['requests']} requests: "
                         + ", ".join(f"{p} {v[1] / KB:.1f}" + (f" x{v[0]}" if v[0] > 1 else "")
                                     for p, v in changed["by_path"].items())
                         + f"; shown {shown_s:.1f} s after the write (polled every 50 ms); page {urlsplit(url).path}; "
                         + load_note(before, after))
            context.close()
        finally:
            browser.close()


def board_refresh(root: Path) -> str:
    m = re.search(r'^refresh = "([^"]+)"', (root / "plotboard.toml").read_text(), re.M)
    return m.group(1) if m else "default (10s)"


def swaps_shown(page: Any, nginx: LoggingNginx, board: Path, offset: float, rng: random.Random, count: int,
                warm: int, events: list[float] | None = None) -> tuple[list[float], list[float], list[float]]:
    """Glass to glass on a 2-chart board (make_fleet(..., 2, groups=None)) open in `page` (with
    OBSERVE_SWAPS) behind `nginx`: warm + count changes, the two charts' data renamed in by turns,
    each followed by a random pause of 0-1 s (the next write lands anywhere in the poll cycle).
    Of all but the first `warm`, in ms after the write (Python's clock just after os.replace): the
    new image shown (the page's clock less `offset`), its PNG served by nginx, and the first of
    `events` (time.time() of the events a raw /events client received) after the write."""
    names = [chart_name(0), chart_name(1)]
    samples: list[float] = []
    served: list[float] = []
    told: list[float] = []
    for k in range(warm + count):
        name = names[k % 2]
        n_before = page.evaluate("(n) => __swaps.filter((e) => e.name === n).length", name)
        log_at = nginx.offset()
        write_input(input_of(board, k % 2, None), pattern(k + 1))
        t_write = time.time()
        entry = page.wait_for_function(
            "([n, k]) => { const l = __swaps.filter((e) => e.name === n && e.frame);"
            " return l.length > k ? l[l.length - 1] : null; }",
            arg=[name, n_before], polling=20, timeout=30_000).json_value()
        shown = (entry["frame"] or entry["inserted"]) / 1000 - offset
        png = [e for e in nginx.entries(log_at) if e["path"] == f"/{name}.png"]
        if k >= warm:
            samples.append((shown - t_write) * 1000)
            if png:
                served.append((png[0]["t"] - t_write) * 1000)
            if events is not None and (after := [t for t in events if t > t_write]):
                told.append((after[0] - t_write) * 1000)
        time.sleep(rng.uniform(0.0, 1.0))
    return samples, served, told


def glass_to_glass(run: Any, h: ModuleType) -> None:
    """Data written -> new image shown, on a 2-chart board with refresh = "1s", nginx + Chromium."""
    from playwright.sync_api import sync_playwright

    count, warm = run.n(20, 8), 2
    idle_s = run.n(30, 10)
    root = run.folder("scale-g2g")
    board = make_fleet(root / "board", 2, groups=None, refresh="1s")
    rng = random.Random(13)
    daemon = Daemon(board, env=h.env(), start_timeout=120)
    raw: dict[str, Any] = {}
    run.raw["scale"]["g2g"] = raw
    try:
        out = board.parent / "public"
        wait_for(lambda: daemon.alive() and all_rendered(out / "status.json", 2), 120, "2 charts rendered")
        h.wait_quiet([out / "status.json"], 1.5)
        with LoggingNginx(out, root / "nginx") as nginx, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(STAMP_LOADS)
                page, opened = open_board(context, nginx.url, nginx)
                page.evaluate(OBSERVE_SWAPS)
                offset, half_rtt = clock_offset(page)
                raw["clock"] = {"page_minus_python_s": offset, "half_round_trip_s": half_rtt}

                before = h.loadavg()
                since = nginx.offset()
                t0 = time.perf_counter()
                time.sleep(idle_s)
                idle = traffic(nginx.entries(since))
                elapsed = time.perf_counter() - t0
                after = h.loadavg()
                raw["idle_viewer"] = {**idle, "seconds": elapsed}
                per_s = idle["sent"] / elapsed

                before2 = h.loadavg()
                samples, served, _ = swaps_shown(page, nginx, board, offset, rng, count, warm)
                after2 = h.loadavg()
                raw["samples_ms"] = samples
                raw["image_served_ms"] = served
                context.close()
            finally:
                browser.close()
    finally:
        stop(daemon)
        shutil.rmtree(root, ignore_errors=True)
    s = h.stats(samples)
    run.row("scale", "glass to glass, 2-chart board, refresh 1s, nginx + Chromium: data written -> new image shown",
            s, unit="ms", target="p50 <= 650 ms", met=s["median"] <= 650,
            note=f"write -> image served by nginx p50 {statistics.median(served):.0f} ms; page clock - Python clock "
                 f"{1000 * offset:+.1f} ms (+-{1000 * half_rtt:.1f}); {warm} warm-ups left out; "
                 + load_note(before2, after2))
    run.row("scale", "  the same board, one idle viewer: bytes sent per second", {"median": per_s}, unit="B/s",
            target="<= 300 B/s", met=per_s <= 300,
            note=f"{idle['requests']} requests in {elapsed:.0f} s, statuses {idle['statuses']}, "
                 f"{idle['request_bytes'] / elapsed:.0f} B/s of requests; " + load_note(before, after))
