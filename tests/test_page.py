"""The board page in a real browser (Debian's Chromium via Playwright) behind real nginx running
deploy/nginx.conf, with the real daemon (`python -m renderer run`) changing the board underneath.

One browser and one live board (with its daemon) serve the whole module; each test opens its own
browser context and, where it needs one, its own nginx.
"""

from __future__ import annotations

import http.client
import io
import json
import random
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from browser import (
    ALL_IMAGES_LOADED, CHROMIUM, NGINX, POLL_URL, SHOWN_IMAGES_LOADED, WATCH_IMAGES, Nginx, PageLog, launch_chromium,
    remove_tree, require_tool, served_dir, wait_for,
)
from conftest import REPO, Board, Daemon, cli_env

REFRESH_S = 1.0
STALE_S = 2.0
NAMES = ("live", "flaky", "feed", "steady")
LATE = "late"  # its input file is written by a test, after the page is open

LIVE = f"""
[board]
title = "Live board"
refresh = "{REFRESH_S:g}s"
workers = 2
render_timeout = "20s"

[defaults]
size = [4, 2]
dpi = 50
hidpi = true

[[charts]]
name = "live"
title = "Live chart"
description = "Changes while the page is open"
plot = "plots:line"
inputs = ["data/live.txt"]

[[charts]]
name = "flaky"
title = "Flaky chart"
plot = "plots:line"
inputs = ["data/flaky.txt"]

[[charts]]
name = "feed"
title = "Fed chart"
plot = "plots:line"
inputs = ["data/feed.txt"]
stale_after = "{STALE_S:g}s"

[[charts]]
name = "steady"
title = "Steady <chart> & co"
plot = "plots:line"
inputs = ["data/steady.txt"]
formats = ["png", "svg"]
hidpi = false

[[charts]]
name = "late"
title = "Late chart"
plot = "plots:line"
inputs = ["data/late.txt"]
"""

# Processes the module shares between its tests (the browser's driver, the daemon): the leak
# guard below lets them and their descendants outlive a single test.
LONG_LIVED: set[int] = set()


def _strays(threads_before: set[threading.Thread]) -> list[str]:
    """Child processes and threads that are neither shared by the module nor multiprocessing's."""
    me = psutil.Process()
    allowed: set[int] = set()
    for pid in LONG_LIVED:
        try:
            allowed.add(pid)
            allowed.update(p.pid for p in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            pass
    found = []
    for p in me.children(recursive=True):
        try:
            if p.pid in allowed or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if p.ppid() == me.pid and any("multiprocessing" in part for part in p.cmdline()):
                continue
            found.append(f"{p.pid} {' '.join(p.cmdline()[:4])}")
        except psutil.Error:
            pass
    found += [f"thread {t.name}" for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """conftest's guard, except that the module's shared browser and daemon outlive each test."""
    threads_before = set(threading.enumerate())
    yield
    try:
        wait_for(lambda: not _strays(threads_before), 30, "the test's processes and threads to end", interval=0.05)
    except AssertionError:
        pytest.fail(f"leaked {_strays(threads_before)}")


# -- shared fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    require_tool(CHROMIUM)
    from playwright.sync_api import sync_playwright

    before = {p.pid for p in psutil.Process().children()}
    with sync_playwright() as pw:
        started = {p.pid for p in psutil.Process().children()} - before
        LONG_LIVED.update(started)
        b = launch_chromium(pw)
        try:
            yield b
        finally:
            b.close()
    LONG_LIVED.difference_update(started)


class Live:
    """The live board and its daemon."""

    def __init__(self, board: Board, daemon: Daemon) -> None:
        self.board, self.daemon = board, daemon

    def entry(self, name: str) -> dict:
        """The chart's entry in status.json as the daemon last wrote it ({} while unreadable)."""
        try:
            return self.board.chart(name)
        except (OSError, ValueError, StopIteration):
            return {}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """A board kept current by the real daemon (refresh = 1 s), every chart rendered once."""
    root = served_dir()
    board = Board(root / "board").write(LIVE)
    for name in NAMES:
        board.data(f"data/{name}.txt", "1 3 2 4 3\n")
    daemon = Daemon(board)
    LONG_LIVED.add(daemon.proc.pid)
    try:
        lv = Live(board, daemon)
        wait_for(lambda: daemon.alive() and all(lv.entry(n).get("hash") for n in (*NAMES, LATE)), 60,
                 "the daemon's first renders")
        yield lv
    finally:
        daemon.stop()
        LONG_LIVED.discard(daemon.proc.pid)
        remove_tree(root)


@pytest.fixture
def live_nginx(live: Live, tmp_path: Path) -> Iterator[Nginx]:
    """nginx (deploy/nginx.conf) serving the live board's output folder, for one test."""
    require_tool(NGINX)
    server = Nginx(live.board.output, tmp_path / "nginx").start()
    try:
        yield server
    finally:
        server.stop()


BIG = """
[board]
title = "Twenty charts"
refresh = "10s"
workers = 2

[defaults]
size = [4, 2]
dpi = 50
hidpi = true
formats = ["png", "svg"]
stale_after = "5m"
"""
BIG_CHART = """
[[charts]]
name = "service-{i:02d}-latency"
title = "Service {i:02d}: p99 latency"
description = "99th percentile response time of service {i:02d} over the last hour, per minute"
plot = "plots:line"
inputs = ["data/shared.txt"]
"""


def demo_copy(folder: Path, theme: str) -> Board:
    """The repository's demo board (board file, charts.py, data/) in folder, in the given theme."""
    folder.mkdir()
    shutil.copy(REPO / "charts.py", folder)
    shutil.copytree(REPO / "data", folder / "data")
    text, n = re.subn(r'(?m)^theme = "\w+"$', f'theme = "{theme}"', (REPO / "plotboard.toml").read_text())
    assert n == 1, "the demo board file no longer sets theme on a line of its own"
    (folder / "plotboard.toml").write_text(text)
    return Board(folder)


@pytest.fixture(scope="module")
def boards() -> Iterator[dict[str, Board]]:
    """Built once with the real CLI, all at once: the repository's demo board in the light and
    the dark theme, and a 20-chart board."""
    root = served_dir()
    made = {theme: demo_copy(root / f"demo-{theme}", theme) for theme in ("light", "dark")}
    made["big"] = Board(root / "big").write(BIG + "".join(BIG_CHART.format(i=i) for i in range(1, 21)))
    made["big"].data("data/shared.txt", "1 3 2 5 4 6\n")
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(b.file)], cwd=b.root,
                               env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        for name, b in made.items()
    }
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"build of {name} failed:\n{out}"
        yield made
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        remove_tree(root)


@pytest.fixture
def context(browser: Any) -> Iterator[Callable[..., Any]]:
    """context(**options): a fresh browser context (1280x800 unless told), closed after the test."""
    opened: list[Any] = []

    def new(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        ctx = browser.new_context(**options)
        opened.append(ctx)
        return ctx

    yield new
    for ctx in opened:
        ctx.close()


def open_board(ctx: Any, url: str) -> tuple[Any, PageLog]:
    """Open the board with the image watch installed; wait for every image and for the
    script's first answer from status.json."""
    page = ctx.new_page()
    page.add_init_script(WATCH_IMAGES)
    log = PageLog(page)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith(POLL_URL), timeout=10_000):
        page.goto(url)
    page.wait_for_function(SHOWN_IMAGES_LOADED, timeout=10_000)
    return page, log


CARD_JS = """
const c = document.querySelector(`.card[data-name="${name}"]`), badge = c.querySelector(".badge").textContent;
const img = c.querySelector(".fig img"), err = c.querySelector(".err"), age = c.querySelector(".age");
"""


def card(page: Any, name: str) -> dict:
    """What the page shows for one chart."""
    return page.evaluate(
        "(name) => {" + CARD_JS + """
            return {state: badge, cls: c.className, error: err.hidden ? null : err.textContent,
                    rendered: age.dateTime, age: age.textContent,
                    src: img && img.getAttribute("src"), srcset: img && img.getAttribute("srcset"),
                    current: img && img.currentSrc, natural: img ? img.naturalWidth : 0,
                    complete: img ? img.complete : false, width: img && img.getAttribute("width"),
                    href: c.querySelector("a.fig").getAttribute("href")};
        }""",
        name,
    )


def wait_card(page: Any, name: str, condition: str, timeout_s: float = 60) -> float:
    """Wait until the JS `condition` (over c, badge, img, err, age) holds for the chart's card;
    returns the page's Date.now() at that moment."""
    return page.wait_for_function(
        "(name) => {" + CARD_JS + f"return ({condition}) && Date.now(); }}", arg=name, timeout=timeout_s * 1000,
    ).json_value()


def values() -> str:
    return " ".join(str(random.randint(0, 100)) for _ in range(8)) + "\n"


def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# -- nginx and the page as served ---------------------------------------------------------------


@pytest.mark.parametrize("path, scale", [("board/", 1), ("board/", 2), ("", 1)])
def test_served_by_nginx_every_image_loads_without_errors(live, live_nginx, context, path, scale):
    page, log = open_board(context(device_scale_factor=scale), live_nginx.url + path)
    for ch in live.board.status()["charts"]:
        c = card(page, ch["name"])
        # naturalWidth is density-corrected: the @2x file reports 200 too.
        assert c["complete"] and c["natural"] == 200 and c["width"] == "200", c
        x2 = ch["name"] != "steady"
        shown = f"{ch['name']}@2x.png" if scale == 2 and x2 else f"{ch['name']}.png"
        assert c["current"] == f"{live_nginx.url}{path}{shown}?v={ch['hash']}", c
        assert c["href"] == (f"{ch['name']}@2x.png" if x2 else f"{ch['name']}.png") + f"?v={ch['hash']}"
    assert page.title() == "Live board"
    assert page.locator(".card[data-name=steady] h2").text_content() == "Steady <chart> & co"
    assert page.locator(".card[data-name=steady] .foot a").get_attribute("href").startswith("steady.svg?v=")
    assert log.problems() == []
    assert {kind for kind, _ in log.requests} <= {"document", "stylesheet", "script", "image", "fetch", "eventsource"}, log.requests
    assert all(url.startswith(live_nginx.url + path) for _, url in log.requests), log.requests
    assert page.evaluate("window.__broken") == []


def readme_promises() -> dict[str, str]:
    """Cache-Control per kind of request, from the table in README.md's nginx section."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"^(#+) Serving with nginx$(.*?)(?=^#{1,3} )", text, re.M | re.S)
    assert match, "README.md has no 'Serving with nginx' section"
    section = match.group(2)
    for placeholder in ("@ROOT@", "@LISTEN@", "@DAEMON@"):
        assert placeholder in section, f"README.md does not explain {placeholder}"
    assert "ETag" in section and "Last-Modified" in section and ".tmp" in section
    promised = {}
    for what, value in re.findall(r"^\| (.+?) \| `([^`]+)`", section, re.M):
        kind = "other" if "else" in what else "page" if "status.json" in what else "versioned" if "?v=" in what else None
        if kind:
            promised[kind] = value
    assert set(promised) == {"page", "versioned", "other"}, promised
    return promised


def test_nginx_sends_the_headers_the_readme_promises(live, live_nginx):
    promised = readme_promises()
    port = live_nginx.port
    h = live.board.chart("live")["hash"]
    for path in ("/board/", "/board/index.html", "/board/status.json", "/", "/index.html", "/status.json"):
        status, headers, body = get(port, path)
        assert status == 200 and body, path
        assert headers["cache-control"] == promised["page"] == "no-cache", (path, headers)
        assert headers["x-content-type-options"] == "nosniff"
    assert get(port, "/board/status.json")[1]["content-type"].startswith("application/json")
    assert get(port, "/board/")[1]["content-type"] == "text/html; charset=utf-8"
    version = re.search(r"static/board\.css\?v=(\w+)", get(port, "/board/")[2].decode()).group(1)
    for path in (f"/board/live.png?v={h}", f"/board/live@2x.png?v={h}", f"/live.png?v={h}",
                 f"/board/static/board.css?v={version}", f"/board/static/board.js?v={version}"):
        status, headers, _ = get(port, path)
        assert status == 200, path
        assert headers["cache-control"] == promised["versioned"], (path, headers)
        assert "max-age=31536000" in headers["cache-control"]
    for path in ("/board/live.png", "/live.png"):
        status, headers, body = get(port, path)
        assert status == 200 and body == (live.board.output / "live.png").read_bytes()
        assert headers["cache-control"] == promised["other"] == "no-cache" and headers["content-type"] == "image/png"
        assert headers["etag"] and headers["last-modified"], headers
        assert get(port, path, **{"If-None-Match": headers["etag"]})[0] == 304
        assert get(port, path, **{"If-Modified-Since": headers["last-modified"]})[0] == 304
    status, headers, _ = get(port, "/board/static/board.js", **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    status, headers, _ = get(port, "/board")
    assert status == 301 and headers["location"] == "/board/"
    temp = live.board.output / ".live.png.x.tmp"
    temp.write_bytes(b"half a file")
    try:
        assert get(port, "/board/.live.png.x.tmp")[0] == 404 and get(port, "/.live.png.x.tmp")[0] == 404
    finally:
        temp.unlink()


def test_page_weight_of_a_20_chart_board_is_at_most_45_kb_or_12_kb_gzipped(boards):
    """What a viewer's browser fetches for the page: index.html and the static files it names.
    A feature's own script (history.js, …) is named only on a board that uses it, so the budget
    holds a board's weight, not the sum of every feature plotboard has."""
    import gzip

    out = boards["big"].output
    html = (out / "index.html").read_text()
    assert html.count('class="card') == 20 and html.count("srcset=") == 20 and html.count(".svg?v=") == 20
    named = sorted(set(re.findall(r'(?:src|href)="(static/[^"?]+)\?v=', html)))
    assert "static/board.js" in named and "static/board.css" in named, named
    files = [out / "index.html", *(out / n for n in named)]
    assert {f.suffix for f in files} == {".html", ".css", ".js"}, files
    sizes = {f.name: f.stat().st_size for f in files}
    # 30 KB before groups, the filter, kiosk rotation and time windows; nginx sends them gzipped.
    assert sum(sizes.values()) <= 45 * 1024, sizes
    wire = {f.name: len(gzip.compress(f.read_bytes())) for f in files}
    assert sum(wire.values()) <= 12 * 1024, wire


# -- live updates with the real daemon ---------------------------------------------------------


def test_a_data_change_swaps_the_image_in_without_reload_or_broken_frame(live, live_nginx, context):
    page, log = open_board(context(), live_nginx.url + "board/")
    page.evaluate("window.__marker = 'still here'; window.__watch = true")
    for round_ in range(3):
        before = card(page, "live")
        live.board.data("data/live.txt", values())
        # How soon the page notices (within one `refresh`) is the page script's timing, not this
        # test's: here only that the new image arrives, with a deadline a loaded machine meets.
        page.wait_for_function(
            "(src) => document.querySelector('.card[data-name=live] .fig img').getAttribute('src') !== src",
            arg=before["src"], timeout=60_000,
        )
        after = card(page, "live")
        new = live.entry("live")["hash"]
        assert after["src"] == f"live.png?v={new}", (round_, after)
        assert after["srcset"] == f"live@2x.png?v={new} 2x" and after["href"] == f"live@2x.png?v={new}"
        assert after["complete"] and after["natural"] == 200 and after["width"] == "200"
        assert page.evaluate("window.__broken") == [], round_
        swaps = [t for t, src in page.evaluate("window.__swaps") if src == after["src"]]
        assert len(swaps) == 1, "the new image must arrive as a new, already loaded element"
    assert page.evaluate("window.__marker") == "still here", "the page reloaded"
    assert len(log.documents) == 1, log.documents
    assert page.evaluate("window.__broken") == []
    assert log.problems() == []


def test_a_failing_plot_shows_error_with_its_message_then_ok_when_fixed(live, live_nginx, context):
    page, log = open_board(context(), live_nginx.url + "board/")
    page.evaluate("window.__watch = true")
    shown = card(page, "flaky")
    live.board.data("data/flaky.txt", "1 x 3\n")
    wait_card(page, "flaky", "badge === 'error' && !err.hidden")
    c = card(page, "flaky")
    message = live.entry("flaky")["error"]
    assert "could not convert string to float" in message
    assert c["error"] == message and "state-error" in c["cls"]
    assert c["src"] == shown["src"] and c["complete"] and c["natural"] == 200, "the previous image stays"
    live.board.data("data/flaky.txt", values())
    wait_card(page, "flaky", f"badge === 'ok' && err.hidden && img.getAttribute('src') !== {json.dumps(shown['src'])}")
    assert "state-ok" in card(page, "flaky")["cls"]
    assert page.evaluate("window.__broken") == []
    assert log.problems() == []


def test_a_chart_waiting_for_its_input_says_so_on_its_card_until_the_file_appears(live, live_nginx, context):
    page, log = open_board(context(), live_nginx.url + "board/")
    page.evaluate("window.__marker = 'still here'")
    wait = "c.querySelector('.wait')"
    wait_card(page, LATE, f"!{wait}.hidden && {wait}.textContent === 'waiting for data/late.txt' && badge === 'pending'", 5)
    assert page.locator(f'.card[data-name="{LATE}"] .wait').is_visible()
    live.board.data(f"data/{LATE}.txt", values())  # the producer writes it: the chart renders with it
    wait_card(page, LATE, f"{wait}.hidden && {wait}.textContent === '' && badge === 'ok'", 10)
    assert live.entry(LATE)["waiting_for"] == [] and live.entry(LATE)["renders"] >= 2
    assert page.evaluate("window.__marker") == "still here", "the page reloaded"
    assert log.problems() == []


def test_a_chart_whose_data_stops_turns_stale_then_ok_when_fed(live, live_nginx, context):
    page, log = open_board(context(), live_nginx.url + "board/")
    before = live.entry("feed")["rendered_at"]
    live.board.data("data/feed.txt", values())
    wait_card(page, "feed", f"badge === 'ok' && age.dateTime > {json.dumps(before)}")
    rendered = card(page, "feed")["rendered"]
    rendered_ms = page.evaluate("(t) => Date.parse(t)", rendered)
    # Nothing renders the chart now: the page alone judges it stale from rendered_at.
    stale_at = wait_card(page, "feed", "badge === 'stale' && c.classList.contains('state-stale')")
    assert stale_at >= rendered_ms + STALE_S * 1000, "stale before stale_after passed"
    assert live.entry("feed")["rendered_at"] == rendered
    live.board.data("data/feed.txt", values())
    wait_card(page, "feed", "badge === 'ok' && c.classList.contains('state-ok')")
    assert log.problems() == []


def test_stopping_the_web_server_shows_the_offline_banner_and_restarting_clears_it(live, live_nginx, context):
    page, log = open_board(context(), live_nginx.url + "board/")
    page.evaluate("window.__marker = 'still here'; window.__watch = true")
    assert page.locator("#offline").is_hidden()
    live_nginx.stop()
    page.wait_for_function(
        "() => { const b = document.getElementById('offline');"
        " return !b.hidden && b.textContent.startsWith('board offline since '); }",
        timeout=60_000,
    )
    assert re.fullmatch(r"board offline since .+ \(\d+ s ago\)", page.locator("#offline").text_content())
    assert page.locator("#offline").is_visible()
    assert page.evaluate(ALL_IMAGES_LOADED), "the images stay while the server is away"
    live_nginx.start()
    page.wait_for_function("() => document.getElementById('offline').hidden", timeout=60_000)
    assert page.evaluate("window.__marker") == "still here"
    assert page.evaluate("window.__broken") == []
    assert log.page_errors == []


HIDE = """(hidden) => {
    Object.defineProperty(document, "hidden", {get: () => hidden, configurable: true});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_a_hidden_tab_stops_polling_and_catches_up_when_shown(live, live_nginx, context):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page, log = open_board(context(), live_nginx.url + "board/")
    before = card(page, "live")
    page.evaluate(HIDE, True)
    old_hash = live.entry("live")["hash"]
    live.board.data("data/live.txt", values())
    wait_for(lambda: live.entry("live").get("hash") not in (None, old_hash), 60, "the daemon to publish live")
    # A negative claim needs a window: a polling page would ask for status.json within `refresh`.
    with pytest.raises(PlaywrightTimeout):
        with page.expect_request(lambda r: "/status" in r.url, timeout=(REFRESH_S * 2 + 0.5) * 1000):
            pass
    assert card(page, "live")["src"] == before["src"]
    page.evaluate(HIDE, False)
    page.wait_for_function(
        "(src) => document.querySelector('.card[data-name=live] .fig img').getAttribute('src') !== src",
        arg=before["src"], timeout=60_000,
    )
    assert card(page, "live")["src"] == f"live.png?v={live.entry('live')['hash']}"
    assert log.problems() == []


def test_without_javascript_the_page_refreshes_itself(live, live_nginx, context):
    page = context(java_script_enabled=False).new_page()
    log = PageLog(page)
    page.goto(live_nginx.url + "board/")
    assert page.locator(".card[data-name=live] .badge").text_content() in ("ok", "stale")
    with page.expect_event("request", lambda r: r.resource_type == "document", timeout=60_000):
        pass
    assert len(log.documents) >= 2 and log.problems() == []


# -- kiosk, themes, file:// --------------------------------------------------------------------


def kiosk_geometry(page: Any) -> dict:
    return page.evaluate(
        """() => {
            const de = document.documentElement, box = (r) => ({l: r.left, t: r.top, r: r.right, b: r.bottom});
            const cards = [...document.querySelectorAll(".card")].map((c) => {
                const img = c.querySelector(".fig img"), r = img.getBoundingClientRect();
                const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
                return {card: box(c.getBoundingClientRect()), img: box(r),
                        drawn: [img.naturalWidth * s, img.naturalHeight * s]};
            });
            scrollTo(0, 10000);
            return {sw: de.scrollWidth, sh: de.scrollHeight, y: scrollY,
                    top: getComputedStyle(document.querySelector(".top")).display, cards,
                    foot: parseFloat(getComputedStyle(document.querySelector(".card .foot")).fontSize)};
        }"""
    )


@pytest.mark.parametrize("which", ["light", "big"])
def test_kiosk_fits_every_chart_on_a_1920x1080_screen(boards, context, tmp_path, which):
    require_tool(NGINX)
    with Nginx(boards[which].output, tmp_path / "nginx") as server:
        page, log = open_board(context(viewport={"width": 1920, "height": 1080}), server.url + "board/?kiosk")
        g = kiosk_geometry(page)
    assert g["top"] == "none", "kiosk drops the header"
    assert g["sw"] <= 1920 and g["sh"] <= 1080 and g["y"] == 0, g
    assert len(g["cards"]) == len(boards[which].status()["charts"])  # the demo's family expanded
    area = 0.0
    for c in g["cards"]:
        assert c["card"]["l"] >= 0 and c["card"]["t"] >= 0 and c["card"]["r"] <= 1920 and c["card"]["b"] <= 1080, c
        assert c["card"]["l"] <= c["img"]["l"] and c["img"]["r"] <= c["card"]["r"], c
        assert c["card"]["t"] <= c["img"]["t"] and c["img"]["b"] <= c["card"]["b"], c
        # The card takes its image's shape: no blank bands beside or above the drawn chart.
        w, h = c["img"]["r"] - c["img"]["l"], c["img"]["b"] - c["img"]["t"]
        assert w - c["drawn"][0] <= 0.04 * w + 2 and h - c["drawn"][1] <= 0.04 * h + 2, c
        area += c["drawn"][0] * c["drawn"][1]
    assert g["foot"] >= 16, "the age line is readable across a room"
    # The charts use the screen rather than sitting small in a corner.
    assert area >= 0.3 * 1920 * 1080, area
    assert log.problems() == []


def luminance(image: Any, box: tuple[int, int, int, int]) -> float:
    """Mean luminance (0-255) of a box of a PIL image."""
    from PIL import ImageStat

    return ImageStat.Stat(image.crop(box).convert("L")).mean[0]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_theme_colours_both_the_page_and_the_images(boards, context, tmp_path, theme):
    from PIL import Image

    require_tool(NGINX)
    with Nginx(boards[theme].output, tmp_path / "nginx") as server:
        page, log = open_board(context(viewport={"width": 1280, "height": 2000}), server.url + "board/")
        page.wait_for_function(ALL_IMAGES_LOADED, timeout=10_000)  # all on screen in this tall window
        boxes = page.evaluate(
            """() => [...document.querySelectorAll(".card")].map((c) => {
                const box = (r) => [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY];
                return {card: box(c.getBoundingClientRect()), img: box(c.querySelector("img").getBoundingClientRect())};
            })"""
        )
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    # Background pixels: the page, each card, each image's figure background (its corner);
    # and each image as a whole.
    backgrounds = {"page": luminance(shot, (0, 0, 8, 8))}
    images = {}
    for i, b in enumerate(boxes):
        x, y = int(b["card"][0]), int(b["card"][1])
        backgrounds[f"card {i}"] = luminance(shot, (x + 3, y + 3, x + 9, y + 9))
        ix, iy, ir, ib = map(int, b["img"])
        backgrounds[f"image {i} corner"] = luminance(shot, (ix + 1, iy + 1, ix + 6, iy + 6))
        images[f"image {i}"] = luminance(shot, (ix, iy, ir, ib))
    if theme == "dark":
        assert max(backgrounds.values()) < 50 and max(images.values()) < 100, (backgrounds, images)
    else:
        # Images as a whole by their median: the demo's magma heatmap, which constrained layout
        # lets fill its image, is dark in either theme; its figure background (corner) is not.
        assert min(backgrounds.values()) > 200 and sorted(images.values())[len(images) // 2] > 120, (backgrounds, images)
    assert log.problems() == []


def test_opened_from_a_file_url_shows_no_offline_banner(boards, context):
    page = context().new_page()
    page.add_init_script(
        "window.__fetches = 0; const f = window.fetch;"
        " window.fetch = function (...a) { window.__fetches++; return f.apply(this, a); };"
    )
    log = PageLog(page)
    page.goto((boards["light"].output / "index.html").as_uri())
    page.wait_for_function(SHOWN_IMAGES_LOADED, timeout=10_000)
    # Start-up paints the ages and starts polling in one go: once the ages read "... ago",
    # a fetch of status.json would have been attempted.
    page.wait_for_function("() => document.querySelector('.age').textContent.endsWith(' ago')", timeout=10_000)
    assert page.evaluate("window.__fetches") == 0
    assert page.locator("#offline").is_hidden()
    assert page.locator(".card .badge").all_text_contents() == ["ok"] * len(boards["light"].status()["charts"])
    assert log.problems() == []
