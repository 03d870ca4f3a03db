"""A large grouped board in headless Chromium behind nginx (deploy/nginx.conf): the page asks
only for the images it shows, an idle poll is answered 304, the filter, deep links, kiosk
rotation through groups, and charts shown near their natural width on desktop screens."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import NGINX, POLL_URL, Nginx, require_tool, served_dir, remove_tree
from conftest import Board, cli_env
from test_page import browser, context, demo_copy, no_leaks, open_board  # noqa: F401 - fixtures

GROUPS, PER_GROUP = 12, 25  # 300 charts

FLEET = """
[board]
title = "Fleet"
refresh = "1s"
workers = 2

[defaults]
size = [4, 2]
dpi = 50
hidpi = false
layout = "none"  # 300 charts: what is tested is the page; constrained layout would cost 1.6x the renders
"""
FLEET_CHART = """
[[charts]]
name = "h{g:02d}-c{i:02d}"
title = "Host {g:02d} chart {i:02d}"
plot = "plots:line"
inputs = ["data/shared.txt"]
group = "Rack {g:02d}"
"""


@pytest.fixture(scope="module")
def fleet() -> Iterator[Board]:
    root = served_dir()
    text = FLEET + "".join(FLEET_CHART.format(g=g, i=i) for g in range(GROUPS) for i in range(PER_GROUP))
    b = Board(root / "fleet").write(text)
    b.data("data/shared.txt", "1 3 2 5 4 6\n")
    demo = demo_copy(root / "demo", "light")
    procs = [subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(x.file)], cwd=x.root,
                              env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for x in (b, demo)]
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out
        b.demo = demo  # type: ignore[attr-defined]
        yield b
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        remove_tree(root)


@pytest.fixture
def server(fleet: Board, tmp_path: Path) -> Iterator[Nginx]:
    require_tool(NGINX)
    with Nginx(fleet.output, tmp_path / "nginx") as s:
        yield s


def image_requests(log: Any) -> list[str]:
    return [url for kind, url in log.requests if kind == "image"]


def test_the_page_asks_only_for_the_images_it_shows(fleet, server, context):
    page, log = open_board(context(viewport={"width": 1920, "height": 1080}), server.url + "board/")
    shown = page.evaluate("""() => [...document.images].filter((i) => {
        const r = i.getBoundingClientRect(); return r.bottom > -400 && r.top < innerHeight + 400; }).length""")
    asked = image_requests(log)
    assert 0 < len(asked) <= shown + 40 and len(asked) < GROUPS * PER_GROUP / 3, (len(asked), shown)
    page.locator("#chart-h11-c24").scroll_into_view_if_needed()
    page.wait_for_function("() => { const i = document.querySelector('#chart-h11-c24 img');"
                           " return i.complete && i.naturalWidth > 0; }", timeout=10_000)
    assert any("/h11-c24.png?v=" in u for u in image_requests(log))
    assert log.problems() == []


def test_an_idle_poll_is_answered_304_and_fetches_no_group(fleet, server, context):
    page, log = open_board(context(), server.url + "board/")
    polls = lambda: [line for line in (server.prefix / "access.log").read_text().splitlines()  # noqa: E731
                     if POLL_URL in line]
    before = len(polls())
    with page.expect_response(lambda r: POLL_URL in r.url, timeout=10_000):
        pass
    with page.expect_response(lambda r: POLL_URL in r.url, timeout=10_000):
        pass
    later = polls()[before:]
    assert later and all(re.search(r'" 304 ', line) for line in later), later
    assert not [u for _, u in log.requests if re.search(r"/status/(?!index)", u)], "an unchanged group was fetched"
    assert log.problems() == []


def test_deep_links_filter_and_group_index(fleet, server, context):
    page, log = open_board(context(), server.url + "board/#chart-h07-c03")
    assert page.evaluate("() => { const r = document.getElementById('chart-h07-c03').getBoundingClientRect();"
                         " return r.top >= 0 && r.top < innerHeight; }")
    assert page.locator("#groups a").count() == GROUPS
    page.locator("#groups a[data-group=rack-05]").click()
    page.wait_for_function("() => location.hash === '#group-rack-05'")
    page.fill("#filter input[name=q]", "h03-c1")
    visible = page.evaluate("() => [...document.querySelectorAll('.card')].filter((c) => !c.hidden"
                            " && !c.closest('section[hidden]')).map((c) => c.dataset.name)")
    assert visible == [f"h03-c{i}" for i in range(10, 20)]
    assert page.locator("#filter output").text_content() == f"10 of {GROUPS * PER_GROUP} charts"
    page.fill("#filter input[name=q]", "")
    page.select_option("#filter select", "error")
    assert page.evaluate("() => document.querySelectorAll('section.group:not([hidden])').length") == 0
    page.select_option("#filter select", "ok")
    assert page.evaluate("() => document.querySelectorAll('.card:not([hidden])').length") == GROUPS * PER_GROUP
    assert log.problems() == []


def test_kiosk_rotates_through_the_groups(fleet, server, context):
    page, log = open_board(context(viewport={"width": 1920, "height": 1080}), server.url + "board/?kiosk&rotate=1s")
    seen = []
    for _ in range(3):
        seen.append(page.evaluate("() => document.getElementById('board').dataset.showing"))
        page.wait_for_function("(was) => document.getElementById('board').dataset.showing !== was",
                               arg=seen[-1], timeout=10_000)
        shown = page.evaluate("() => [...document.querySelectorAll('section.group')].filter((s) => !s.hidden)"
                              ".map((s) => s.dataset.group)")
        assert len(shown) == 1
    first = int(seen[0].split("-")[1])  # 1 s turns: it may have moved on while the page loaded
    assert seen == [f"rack-{(first + k) % GROUPS:02d}" for k in range(3)], seen
    g = page.evaluate("""() => [...document.querySelectorAll('section:not([hidden]) .card')].map((c) => {
        const r = c.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    assert len(g) == PER_GROUP and all(0 <= l and 0 <= t and r <= 1920 and b <= 1080 for l, t, r, b in g), g
    assert log.problems() == []


@pytest.mark.parametrize("width, height", [(1400, 1000), (1920, 1080)])
def test_demo_charts_are_shown_near_their_natural_width(fleet, context, tmp_path, width, height):
    require_tool(NGINX)
    with Nginx(fleet.demo.output, tmp_path / "nginx") as s:
        page, log = open_board(context(viewport={"width": width, "height": height}), s.url + "board/")
        sizes = page.evaluate("() => [...document.querySelectorAll('.card img')].map((i) =>"
                              " [i.getBoundingClientRect().width, +i.getAttribute('width')])")
        tops = page.evaluate("() => [...document.querySelectorAll('.card img')].map((i) =>"
                             " Math.round(i.getBoundingClientRect().top + scrollY))")
    assert sizes and all(abs(shown - natural) <= 0.1 * natural for shown, natural in sizes), sizes
    per_row = round(sum(1 for t in tops if t == tops[0]))
    assert per_row >= (2 if width >= 1800 else 1), tops
    # Cards in one row have their images at one height, whatever their descriptions.
    assert len(set(tops[:per_row])) == 1, tops
    assert log.problems() == []
