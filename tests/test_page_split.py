"""A split board (more charts in groups than `page_limit`) in headless Chromium behind nginx
(deploy/nginx.conf): index.html lists the groups and loads no image, a group page asks only for
the images it shows and polls with 304s, the filter finds a chart's group, kiosk rotation moves
through the group pages, and the index's summaries follow status/index.json."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from browser import NGINX, POLL_URL, Nginx, PageLog, remove_tree, require_tool, served_dir
from conftest import Board, cli_env
from test_page import browser, context, no_leaks, open_board  # noqa: F401 - fixtures
from test_page_fleet import server  # noqa: F401 - a fixture: nginx serving this module's `fleet`

GROUPS, PER_GROUP = 40, 50  # 2,000 tiny charts: split at the default page_limit (500)

SPLIT = """
[board]
title = "Fleet"
refresh = "1s"
workers = 2

[defaults]
size = [2, 1]
dpi = 40
hidpi = false
layout = "none"  # 2,000 tiny charts: what is tested is the pages; constrained layout would cost 1.6x the renders
plot = "plots:line"
inputs = ["data/shared.txt"]
"""


def chart_name(g: int, i: int) -> str:
    return f"c{g * PER_GROUP + i:04d}"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Board]:
    root = served_dir()
    charts = "".join(f'[[charts]]\nname = "{chart_name(g, i)}"\ngroup = "Rack {g:02d}"\n'
                     for g in range(GROUPS) for i in range(PER_GROUP))
    b = Board(root / "fleet").write(SPLIT + charts)
    b.data("data/shared.txt", "1 3 2 5 4 6\n")
    try:
        done = subprocess.run([sys.executable, "-m", "renderer", "build", "-c", str(b.file)], cwd=b.root,
                              env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        yield b
    finally:
        remove_tree(root)


def sent(server: Nginx, since: int = 0) -> list[tuple[str, int, int]]:
    """(path, status, body bytes) of each request nginx answered, from its access log."""
    lines = (server.prefix / "access.log").read_text().splitlines()[since:]
    return [(m.group(1), int(m.group(2)), int(m.group(3))) for line in lines
            if (m := re.search(r'"GET (\S+) HTTP/[\d.]+" (\d+) (\d+)', line))]


def test_a_split_index_lists_the_groups_and_loads_no_image(fleet, server, context):
    page, log = open_board(context(viewport={"width": 1920, "height": 1080}), server.url + "board/")
    assert page.locator("section.group").count() == GROUPS and page.locator(".card").count() == 0
    assert [kind for kind, _ in log.requests if kind == "image"] == []
    text = sum(size for path, _, size in sent(server) if not path.split("?")[0].endswith(".png"))
    assert text < 60_000, f"{text} bytes of HTML, JSON, CSS and JS for {GROUPS * PER_GROUP} charts"
    page.locator("section#group-rack-07 .group-title a").click()
    page.wait_for_url("**/board/groups/rack-07.html")
    with urllib.request.urlopen(server.url + "board/groups/rack-07.html", timeout=30) as response:
        assert response.headers["Cache-Control"] == "no-cache", "a group page must be revalidated"
    assert log.problems() == []


def test_a_group_page_asks_only_for_its_images_and_an_idle_poll_is_304(fleet, server, context):
    page, log = open_board(context(viewport={"width": 1920, "height": 1080}), server.url + "board/groups/rack-03.html")
    names = page.evaluate("() => [...document.querySelectorAll('.card')].map((c) => c.dataset.name)")
    assert names == [chart_name(3, i) for i in range(PER_GROUP)]
    asked = [url for kind, url in log.requests if kind == "image"]
    assert asked and all(re.search(r"/board/c(01[5-9]\d)\.png\?v=", u) for u in asked), asked
    before = len(sent(server))
    for _ in range(2):
        with page.expect_response(lambda r: POLL_URL in r.url, timeout=10_000):
            pass
    later = [(p, s) for p, s, _ in sent(server, before)]
    assert later and all(s == 304 for p, s in later if POLL_URL in p), later
    assert not [p for p, _ in later if re.search(r"/status/(?!index)", p)], "an unchanged group was fetched"
    assert log.problems() == []


def test_the_split_index_filter_finds_the_group_of_a_chart(fleet, server, context):
    page, log = open_board(context(), server.url + "board/")
    page.fill("#filter input[name=q]", chart_name(12, 34))
    shown = page.evaluate("() => [...document.querySelectorAll('section.group:not([hidden])')].map((s) => s.dataset.group)")
    assert shown == ["rack-12"]
    assert page.locator("#filter output").text_content() == f"1 of {GROUPS} groups"
    page.fill("#filter input[name=q]", "rack 3")
    assert page.evaluate("() => document.querySelectorAll('section.group:not([hidden])').length") == 10
    page.fill("#filter input[name=q]", "")
    page.select_option("#filter select", "error")
    assert page.evaluate("() => document.querySelectorAll('section.group:not([hidden])').length") == 0
    assert log.problems() == []


def test_an_alert_link_to_a_chart_of_a_split_board_goes_on_to_its_group_page(fleet, server, context):
    page = context().new_page()
    log = PageLog(page)
    page.goto(server.url + f"board/#{chart_name(12, 34)}")
    page.wait_for_url(re.compile(rf"/board/groups/rack-12\.html#chart-{chart_name(12, 34)}$"), timeout=60_000)
    page.wait_for_function("(n) => { const c = document.querySelector('.card:target');"
                           " return c && c.dataset.name === n; }", arg=chart_name(12, 34), timeout=60_000)
    assert log.problems() == []
    page = context().new_page()
    page.goto(server.url + f"board/#history-{chart_name(3, 1)}@20261206T121314.123Z")  # a moment's link too
    page.wait_for_url(re.compile(rf"/board/groups/rack-03\.html#history-{chart_name(3, 1)}@20261206T121314\.123Z$"),
                      timeout=60_000)
    page = context().new_page()
    page.goto(server.url + "board/#group-rack-05")  # a group's own id: left to the browser
    page.wait_for_function("() => document.querySelector('#group-rack-05 .summary').textContent !== ''",
                           timeout=60_000)  # the script ran
    assert page.evaluate("location.pathname").endswith("/board/")


def test_kiosk_rotates_through_the_group_pages(fleet, server, context):
    page = context(viewport={"width": 1920, "height": 1080}).new_page()
    page.goto(server.url + "board/?kiosk&rotate=1s")
    page.wait_for_url(re.compile(r"/board/groups/rack-00\.html\?kiosk&rotate=1s$"), timeout=10_000)
    page.wait_for_url(re.compile(r"/board/groups/rack-01\.html\?kiosk&rotate=1s$"), timeout=10_000)
    page.wait_for_function("() => getComputedStyle(document.getElementById('board')).getPropertyValue('--cols')")
    boxes = page.evaluate("""() => [...document.querySelectorAll('.card')].map((c) => {
        const r = c.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    assert len(boxes) == PER_GROUP and all(0 <= l and 0 <= t and r <= 1920 and b <= 1080 for l, t, r, b in boxes)


def test_the_split_index_summary_follows_status_without_a_reload(tmp_path, context):
    require_tool(NGINX)
    root = served_dir()
    try:
        b = Board(root / "small").write(SPLIT.replace("workers = 2", "workers = 2\npage_limit = 2") + "".join(
            f'[[charts]]\nname = "c{i}"\ngroup = "{"AB"[i // 2]}"\n' for i in range(4)))
        b.data("data/shared.txt", "1 2 3\n")
        assert b.cli("build").returncode == 0
        with Nginx(b.output, tmp_path / "nginx") as s:
            page, log = open_board(context(), s.url + "board/")
            page.evaluate("() => { window.sameDocument = true; }")
            assert page.locator("#group-b .summary").text_content().strip() == "2 ok"
            b.file.write_text(b.file.read_text().replace('name = "c3"', 'name = "c3"\nplot = "plots:boom"'))
            assert b.cli("build").returncode == 1
            page.wait_for_function("() => document.querySelector('#group-b .summary').textContent.includes('1 error')",
                                   timeout=10_000)
            link = page.locator("#group-b .summary .trouble a")
            assert link.get_attribute("href") == "groups/b.html#chart-c3" and link.text_content() == "c3"
            assert page.locator("#groups a[data-group=b] .count.state-error").text_content() == "1"
            assert page.evaluate("() => window.sameDocument === true"), "the page reloaded"
    finally:
        remove_tree(root)


def test_an_image_off_screen_is_swapped_only_when_scrolled_into_view(tmp_path, context):
    require_tool(NGINX)
    root = served_dir()
    try:
        names = [f"c{i:02d}" for i in range(40)]
        b = Board(root / "tall").write(SPLIT.replace('inputs = ["data/shared.txt"]\n', "").replace(
            "workers = 2", "workers = 2\npage_limit = 2").replace("size = [2, 1]", "size = [10, 5]") + "".join(
            f'[[charts]]\nname = "{n}"\ngroup = "All"\ninputs = ["data/{n}.txt"]\n' for n in names))
        for n in names:
            b.data(f"data/{n}.txt", "1 2 3\n")
        assert b.cli("build").returncode == 0
        with Nginx(b.output, tmp_path / "nginx") as s:
            page, log = open_board(context(viewport={"width": 800, "height": 600}), s.url + "board/groups/all.html")
            src = lambda: page.evaluate("() => document.querySelector('#chart-c39 img').getAttribute('src')")  # noqa: E731
            old = src()
            assert not any("/c39.png" in u for kind, u in log.requests if kind == "image"), "loaded though off screen"
            b.data("data/c39.txt", "3 2 1 5\n")
            assert b.cli("build").returncode == 0
            new_hash = b.chart("c39")["hash"]
            page.wait_for_function("(h) => document.querySelector('#chart-c39').dataset.hash !== h"
                                   " || document.querySelector('#chart-c39')._next", arg=old.split("?v=")[1],
                                   timeout=10_000)
            assert src() == old, "an off-screen card's image was swapped"
            page.locator("#chart-c39").scroll_into_view_if_needed()
            page.wait_for_function("(h) => document.querySelector('#chart-c39 img').getAttribute('src').endsWith(h)"
                                   " && document.querySelector('#chart-c39 img').complete", arg=new_hash, timeout=10_000)
            assert page.evaluate("() => document.querySelector('#chart-c39 img').naturalWidth") > 0
            assert log.problems() == []
    finally:
        remove_tree(root)
