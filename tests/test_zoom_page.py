"""Zoom on the page (issue 26), in a real Chromium against a real `plotboard run --serve`: a zoomable
chart's card offers the zoom control (data-zoom) once the daemon answers; a preset, earlier, from/to
and a drag across the image each show the image drawn on demand (render/NAME.png?window=…&end=…)
in place, and "live" brings the live image back. Served by a static host (nginx with no daemon
behind it, a plain file server), the page shows no control; behind nginx with the daemon, it does."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from typing import Any, Iterator

import pytest
from browser import NGINX, Nginx, PageLog, accepts, free_port, remove_tree, require_tool, served_dir, wait_for
from browser import open_page as open_watched
from conftest import Board, chart, fast_board
from daemon_helpers import Daemon
from test_page import LONG_LIVED, browser, context, no_leaks  # noqa: F401 - the module's fixtures

PLOTS = '''
import datetime as dt, time

def z(fig, inputs, window=3600.0, window_name="1h", end=None, **params):
    """Dates across, the window up to `end` exactly: what the page's drag assumes of a zoomed image."""
    end = end if end is not None else time.time()
    if end < 1e9:
        raise ValueError("no data before 2001")
    t0, t1 = (dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in (end - window, end))
    ax = fig.add_subplot()
    ax.plot([t0, t1], [float(open(inputs[0]).read().split()[0]), 2])
    ax.set_xlim(t0, t1)
    ax.set_title(window_name)

def plain(fig, inputs, **params):
    fig.add_subplot().plot([1, 2, 3])
'''
WIDTH, HEIGHT = 480, 240  # the chart's pixels: 6 × 3 inches at 80 dpi


class Served:
    def __init__(self, board: Board, daemon: Daemon, port: int) -> None:
        self.board, self.daemon, self.port = board, daemon, port
        self.url = f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """A board with a zoomable chart (lat) and a plain one, under `plotboard run --serve`."""
    root = served_dir()
    b = fast_board(root / "board",
                   chart("lat", "plots:z", "data/a.txt", 'windows = ["1h", "1d"]\nzoom = true\nsize = [6, 3]\ndpi = 80'),
                   chart("plain", "plots:plain", "data/a.txt"), plots=PLOTS, refresh="1s")
    b.data("data/a.txt", "1\n")
    port = free_port()
    d = Daemon(b, "--serve", str(port))
    LONG_LIVED.add(d.proc.pid)
    try:
        d.wait_state("lat", state="ok")
        d.wait_state("plain", state="ok")
        yield Served(b, d, port)
    finally:
        d.stop()
        LONG_LIVED.discard(d.proc.pid)
        remove_tree(root)


def open_page(ctx: Any, url: str) -> tuple[Any, PageLog]:
    """The page, once it has probed the daemon for zoom (data-zoom-probe on #board)."""
    return open_watched(ctx, url, "() => document.getElementById('board').dataset.zoomProbe", 60_000)


SHOWN = """() => {
  const c = document.getElementById('chart-lat'), imgs = c.querySelectorAll('.fig img'), i = imgs[0];
  return {count: imgs.length, src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0, w: i.naturalWidth,
          zoomed: i.getAttribute('src').includes('render/'), srcset: i.getAttribute('srcset'),
          out: c.querySelector('[data-zoom] output').value};
}"""


def shown(page: Any) -> dict:
    return page.evaluate(SHOWN)


def render_asked(page: Any, action) -> dict:
    """Do `action`; the /render/lat.png request it made, its query as numbers, once the image is in."""
    with page.expect_response(lambda r: "/render/lat.png?" in r.url, timeout=60_000) as answer:
        action()
    r = answer.value
    assert r.status == 200 and r.header_value("content-type") == "image/png", (r.url, r.status)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.url).query))
    wait_for(lambda: (s := shown(page))["zoomed"] and s["loaded"] and r.url.endswith(s["src"]),
             60, "the image drawn on demand, in place")
    s = shown(page)
    assert s["w"] == WIDTH and s["count"] == 1 and not s["srcset"], s  # the card's one image is it
    window = query["window"]
    seconds = float(window[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[window[-1]]
    return {"window": window, "seconds": seconds, "end": float(query["end"])}


def probed(page: Any, log: PageLog, url: str) -> None:
    """The page asked `url` (render/) once, its only request there before any zoom."""
    assert [u for _, u in log.requests if "/render/" in u][:1] == [url], log.requests


def test_presets_earlier_from_to_and_a_drag_show_images_drawn_on_demand_then_live(served, context):
    page, log = open_page(context(timezone_id="UTC"), served.url)
    assert page.evaluate("document.getElementById('board').dataset.zoomProbe") == "daemon"
    assert log.problems() == []  # the probe's answer (204) is no error in the console
    probed(page, log, served.url + "render/")
    assert page.locator("#chart-lat [data-zoom]").count() == 1
    assert page.locator("#chart-plain [data-zoom]").count() == 0  # not zoomable: no control
    live_src = shown(page)["src"]
    assert shown(page)["out"] == "live" and live_src.startswith("lat.png?v=")

    # a preset: the last 6 hours, up to now
    before = time.time()
    asked = render_asked(page, lambda: page.click("#chart-lat [data-zoom] button:text-is('6h')"))
    assert asked["window"] == "6h" and before - 5 <= asked["end"] <= time.time() + 5, asked
    end = asked["end"]

    # earlier: the same span, just before
    asked = render_asked(page, lambda: page.click("#chart-lat [data-zoom] button:text-is('‹ earlier')"))
    assert asked["window"] == "6h" and asked["end"] == end - 6 * 3600, asked

    # from / to, in the viewer's time (UTC here)
    page.fill("#chart-lat [data-zoom] input >> nth=0", "2026-11-30T10:00")
    page.fill("#chart-lat [data-zoom] input >> nth=1", "2026-11-30T12:30")
    asked = render_asked(page, lambda: page.click("#chart-lat [data-zoom] button:text-is('show')"))
    assert asked["seconds"] == 2.5 * 3600 and asked["end"] == 1796041800, asked  # 2026-11-30T12:30Z

    # a range the plot cannot draw: its one-line error, and the image shown stays
    shown_src = shown(page)["src"]
    page.fill("#chart-lat [data-zoom] input >> nth=0", "2000-01-01T00:00")
    page.fill("#chart-lat [data-zoom] input >> nth=1", "2000-01-02T00:00")
    with page.expect_response(lambda r: "/render/lat.png?" in r.url and r.status == 500, timeout=60_000):
        page.click("#chart-lat [data-zoom] button:text-is('show')")
    wait_for(lambda: "no data before 2001" in shown(page)["out"], 60, "the plot's error under the image")
    assert shown(page)["out"].startswith("could not draw it: HTTP 500 ValueError: no data before 2001")
    assert shown(page)["src"] == shown_src
    log.failed[:] = [f for f in log.failed if "HTTP 500" not in f]  # expected: the plot's failure
    log.console_errors[:] = [e for e in log.console_errors if "status of 500" not in e]

    # a new live image meanwhile stays out of sight; back to live, it is the card's image
    served.board.data("data/a.txt", "1.5\n")
    wait_for(lambda: served.daemon.state("lat").get("hash") not in (None, live_src[len("lat.png?v="):]), 60, "a new image")
    new_src = "lat.png?v=" + served.daemon.state("lat")["hash"]
    wait_for(lambda: page.evaluate("document.getElementById('chart-lat').dataset.hash") in new_src, 60,
             "the page to take the new live image")
    assert shown(page)["src"] == shown_src and shown(page)["count"] == 1
    page.click("#chart-lat [data-zoom] button:text-is('live')")
    wait_for(lambda: (s := shown(page))["src"] == new_src and s["loaded"], 60, "live again, the new image")
    assert shown(page)["out"] == "live" and shown(page)["count"] == 1 and page.evaluate(
        "document.querySelector('#chart-lat .fig img').alt") == "lat"

    # a drag across the live image: the times under the pointer, from the axes the render recorded
    axes = served.daemon.state("lat")["axes"]
    left, top, right, bottom = axes["box"]
    x0, x1 = axes["x"]
    fig = page.locator("#chart-lat .fig img").bounding_box()  # one image: the live one
    a, b = left + 0.25 * (right - left), left + 0.6 * (right - left)  # fractions of the image's width
    y = fig["y"] + fig["height"] * (top + bottom) / 2

    def drag() -> None:
        page.mouse.move(fig["x"] + a * fig["width"], y)
        page.mouse.down()
        page.mouse.move(fig["x"] + (a + b) / 2 * fig["width"], y, steps=4)
        page.mouse.move(fig["x"] + b * fig["width"], y, steps=4)
        page.mouse.up()

    asked = render_asked(page, drag)
    at = lambda f: x0 + (f - left) / (right - left) * (x1 - x0)  # noqa: E731
    pixel = (x1 - x0) / ((right - left) * fig["width"])  # one CSS pixel's worth of time
    assert abs(asked["end"] - at(b)) <= 2 * pixel and abs(asked["seconds"] - (at(b) - at(a))) <= 3 * pixel, (asked, at(a), at(b))
    assert page.evaluate("location.hash") == ""  # the drag opened nothing (no full-size image)
    assert len(log.documents) == 1

    # a drag across that zoomed image: its own range, [end - window, end]
    outer = asked
    asked = render_asked(page, drag)
    span = lambda f: outer["end"] - outer["seconds"] + (f - left) / (right - left) * outer["seconds"]  # noqa: E731
    pixel = outer["seconds"] / ((right - left) * fig["width"])
    assert abs(asked["end"] - span(b)) <= 2 * pixel and abs(asked["seconds"] - (span(b) - span(a))) <= 3 * pixel, asked
    page.click("#chart-lat [data-zoom] button:text-is('live')")
    wait_for(lambda: shown(page)["src"] == new_src, 60, "live again")
    assert log.problems() == [] and page.evaluate("window.__broken") == []


@pytest.mark.parametrize("ratio", [2, 1])
def test_a_hidpi_screen_asks_for_scale_2_and_shows_twice_the_pixels(served, context, ratio):
    """At a device pixel ratio of 2 the image drawn on demand is as sharp as the live image's @2x:
    twice the pixels in the same CSS box; at 1, no `scale` and the chart's own pixels."""
    page, log = open_page(context(device_scale_factor=ratio), served.url)
    box = "() => document.querySelector('#chart-lat .fig img').getBoundingClientRect().width"
    live = page.evaluate(box)
    assert shown(page)["w"] == WIDTH  # the live image: 1x (this chart has no @2x)
    with page.expect_response(lambda r: "/render/lat.png?" in r.url, timeout=60_000) as answer:
        page.click("#chart-lat [data-zoom] button:text-is('1h')")
    r = answer.value
    assert r.status == 200 and r.header_value("content-type") == "image/png", (r.url, r.status)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.url).query))
    assert query.get("scale") == ("2" if ratio == 2 else None), r.url
    wait_for(lambda: (s := shown(page))["zoomed"] and s["loaded"] and r.url.endswith(s["src"]),
             60, "the image drawn on demand, in place")
    natural = page.evaluate("() => { const i = document.querySelector('#chart-lat .fig img'); "
                            "return [i.naturalWidth, i.naturalHeight]; }")
    assert natural == [WIDTH * ratio, HEIGHT * ratio]  # at 2: twice the live image's, as its @2x would be
    assert page.evaluate(box) == live  # in the live image's CSS box
    assert log.problems() == []


def test_a_static_host_shows_no_zoom_control(served, context):
    """The same folder served by nginx without the daemon behind it: no control, nothing broken."""
    require_tool(NGINX)
    root = served_dir("plotboard-zoom-static-")
    try:
        with Nginx(served.board.output, root / "nginx") as server:  # /render/ reaches no daemon
            page, log = open_page(context(), server.url)
            assert page.evaluate("document.getElementById('board').dataset.zoomProbe") == "static"
            assert page.locator("[data-zoom]").count() == 0
            assert page.locator("#chart-lat .fig img").is_visible()
            assert [u for _, u in log.requests if "/render/" in u] == [server.url + "render/"]
    finally:
        remove_tree(root)


def test_a_plain_file_server_shows_no_zoom_control(served, context):
    """python -m http.server on the output folder: render/ is a file it does not have (404)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(served.board.output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is None and accepts(port), 60, "the file server")
        page, _ = open_page(context(), f"http://127.0.0.1:{port}/")
        assert page.evaluate("document.getElementById('board').dataset.zoomProbe") == "static"
        assert page.locator("[data-zoom]").count() == 0
    finally:
        proc.terminate()
        proc.wait(30)


def test_behind_nginx_with_the_daemon_the_control_works_under_a_path_prefix(served, context):
    """deploy/nginx.conf proxying /board/render/ to the daemon: the page at /board/ zooms alike."""
    require_tool(NGINX)
    root = served_dir("plotboard-zoom-nginx-")
    try:
        zoom = served.board.root / ".plotboard" / "zoom"
        with Nginx(served.board.output, root / "nginx", daemon=served.port, zoom=zoom) as server:
            page, log = open_page(context(), server.url + "board/")
            assert page.evaluate("document.getElementById('board').dataset.zoomProbe") == "daemon"
            probed(page, log, server.url + "board/render/")
            asked = render_asked(page, lambda: page.click("#chart-lat [data-zoom] button:text-is('1d')"))
            assert asked["window"] == "1d"
            assert any(u.startswith(server.url + "board/render/lat.png?window=1d&end=") for _, u in log.requests)
            assert log.problems() == []
    finally:
        remove_tree(root)
