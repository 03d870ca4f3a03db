"""Push to an open page: `plotboard run --serve` behind real nginx (deploy/nginx.conf proxies
/events unbuffered), in headless Chromium. A new image reaches the page by an event; with the
daemon stopped while nginx still serves the folder, the page polls, and it takes the stream
again once the daemon is back."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import NGINX, POLL_URL, Nginx, PageLog, free_port, remove_tree, require_tool, served_dir, wait_for
from conftest import Board, Daemon, chart, fast_board
from test_page import browser, context, no_leaks  # noqa: F401 - the module's browser, its leak guard

PUSHED = "() => document.getElementById('board').hasAttribute('data-pushed')"
IMG = "() => document.querySelector('.card[data-name=live] .fig img').getAttribute('src')"


def values() -> str:
    return " ".join(str(random.randint(0, 100)) for _ in range(8)) + "\n"


@pytest.fixture
def pushed(tmp_path: Path) -> Iterator[tuple[Board, Daemon, int, Nginx]]:
    """A board whose daemon serves on a port that nginx proxies /events to."""
    require_tool(NGINX)
    root = served_dir()
    board = fast_board(root / "board", chart("live", inputs="data/live.txt"), refresh="2s")
    board.data("data/live.txt", values())
    port = free_port()
    daemon = Daemon(board, "--serve", str(port))
    nginx = Nginx(board.output, tmp_path / "nginx", daemon=port)
    try:
        wait_for(lambda: daemon.alive() and board.chart("live").get("hash"), 60, "the first render")
        nginx.start()
        yield board, daemon, port, nginx
    finally:
        nginx.stop()
        daemon.close()
        remove_tree(root)


def test_an_image_change_reaches_the_page_by_an_event_and_without_the_stream_it_polls(pushed, context):
    board, daemon, port, nginx = pushed
    page = context().new_page()
    log = PageLog(page)
    page.goto(nginx.url + "board/")
    page.wait_for_function(PUSHED, timeout=60_000)  # the stream is open through nginx
    for _ in range(2):
        before = page.evaluate(IMG)
        board.data("data/live.txt", values())
        page.wait_for_function(f"(src) => ({IMG})() !== src", arg=before, timeout=60_000)
        # On its stream from before the change to after it, the page polled every 5 min (refresh
        # is 2 s only for the fallback): the fetch that brought the image was made on an event.
        assert page.evaluate(PUSHED)
        assert page.evaluate(IMG) == f"live.png?v={board.chart('live')['hash']}"

    # The daemon stops; nginx still serves the folder: the stream ends, the page polls every
    # `refresh`, with no outage shown.
    assert daemon.stop() == 0
    page.wait_for_function(f"() => !({PUSHED})()", timeout=60_000)
    for _ in range(2):  # (Playwright's events arrive while it waits, not while Python sleeps)
        with page.expect_response(lambda r: POLL_URL in r.url and r.status in (200, 304), timeout=60_000):
            pass
    assert page.evaluate("() => document.getElementById('offline').hidden")

    # The daemon comes back: the page takes the stream again (backing off 1 s, 4 s, 16 s, …).
    again = Daemon(board, "--serve", str(port))
    try:
        page.wait_for_function(PUSHED, timeout=60_000)
        before = page.evaluate(IMG)
        board.data("data/live.txt", values())
        page.wait_for_function(f"(src) => ({IMG})() !== src", arg=before, timeout=60_000)
    finally:
        again.close()
    assert log.problems() == []
