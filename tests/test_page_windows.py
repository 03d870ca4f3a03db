"""Time windows on the page, in a real Chromium behind real nginx: a card switches windows in
place (no reload, no broken frame), works as plain links without JavaScript, and #all-NAME
shows every window of a chart at once (issue 14)."""

from __future__ import annotations

from typing import Iterator

import pytest
from browser import NGINX, Nginx, open_page, remove_tree, require_tool, served_dir
from conftest import Board, chart, fast_board
from test_page import LONG_LIVED, browser, context, no_leaks  # noqa: F401 - the module's fixtures

PLOTS = '''
def by_window(fig, inputs, window=None, window_name=None, **params):
    ax = fig.add_subplot()
    ax.plot(range(int((window or 3600) // 3600) + 2))
    ax.set_title(window_name)
'''


@pytest.fixture(scope="module")
def windowed() -> Iterator[tuple[Board, Nginx]]:
    require_tool(NGINX)
    root = served_dir()
    b = fast_board(root / "board", chart("cpu", "plots:by_window", extra='windows = ["1h", "1d", "7d"]\ntitle = "CPU"'),
                   chart("plain", "plots:by_window"), plots=PLOTS)
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    server = Nginx(b.output, root / "nginx").start()
    pid = server.proc.pid
    LONG_LIVED.add(pid)  # shared by the module's tests
    try:
        yield b, server
    finally:
        server.stop()
        LONG_LIVED.discard(pid)
        remove_tree(root)


IMG = "document.querySelector('.card[data-name=cpu] .fig img')"


def test_switching_windows_swaps_the_image_in_place_without_reload_or_broken_frame(windowed, context):
    board, server = windowed
    windows = {w["name"]: w for w in board.chart("cpu")["windows"]}
    page, log = open_page(context(), server.url)
    page.evaluate("window.__marker = 'still here'; window.__watch = true")
    for name in ("7d", "1d", "1h", "7d"):
        page.click(f".card[data-name=cpu] .windows a[data-window='{name}']")
        want = f"{windows[name]['image'] if name != '1h' else 'cpu.png'}?v={windows[name]['hash']}"
        page.wait_for_function(f"(want) => {IMG}.getAttribute('src') === want", arg=want, timeout=10_000)
        assert page.evaluate(f"{IMG}.complete && {IMG}.naturalWidth") == 80
        assert page.evaluate(
            "() => document.querySelector('.card[data-name=cpu] .windows a[aria-current]').dataset.window") == name
        assert page.evaluate("window.__broken") == [], name
    assert page.evaluate("window.__marker") == "still here", "the page reloaded"
    assert len(log.documents) == 1
    assert log.problems() == []


def test_without_javascript_the_windows_are_plain_links_to_their_images(windowed, context):
    board, server = windowed
    page = context(java_script_enabled=False).new_page()
    page.goto(server.url)
    links = page.eval_on_selector_all(".card[data-name=cpu] .windows a[data-window]",
                                      "(as) => as.map((a) => [a.dataset.window, a.getAttribute('href')])")
    hashes = {w["name"]: w["hash"] for w in board.chart("cpu")["windows"]}
    assert links == [[n, f"cpu.{n}.png?v={hashes[n]}"] for n in ("1h", "1d", "7d")]
    page.click(".card[data-name=cpu] .windows a[data-window='7d']")
    assert page.url.split("?")[0].endswith("/cpu.7d.png")
    assert not page.query_selector(".card[data-name=plain] .windows")


def test_the_per_chart_view_shows_every_window(windowed, context):
    board, server = windowed
    page, log = open_page(context(), server.url)
    assert not page.is_visible("#all-cpu")
    page.click(".card[data-name=cpu] .windows a.all")
    page.wait_for_function("() => [...document.querySelectorAll('#all-cpu img')]"
                           ".every((i) => i.complete && i.naturalWidth === 80)", timeout=10_000)
    shown = page.eval_on_selector_all("#all-cpu figure", "(fs) => fs.map((f) => [f.querySelector('figcaption')"
                                      ".textContent, f.querySelector('img').getAttribute('src').split('?')[0],"
                                      " f.getBoundingClientRect().width > 0])")
    assert shown == [["1h", "cpu.1h.png", True], ["1d", "cpu.1d.png", True], ["7d", "cpu.7d.png", True]]
    assert len(log.documents) == 1 and log.problems() == []
