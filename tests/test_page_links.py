"""Alert links on the page, in a real Chromium behind real nginx: an alert's `url` ends in
`#NAME` (DESIGN.md, "Alerts"); the board page goes on to that chart's card (#chart-NAME, which
the page marks as the :target), on load and when the hash changes."""

from __future__ import annotations

from typing import Iterator

import pytest
from browser import NGINX, Nginx, remove_tree, require_tool, served_dir, wait_for
from conftest import Board, chart, fast_board
from test_history_page import open_page
from test_page import LONG_LIVED, browser, context, no_leaks  # noqa: F401 - the module's fixtures

CHARTS = 40


@pytest.fixture(scope="module")
def many() -> Iterator[tuple[Board, Nginx]]:
    """A board of CHARTS charts, built once, behind nginx."""
    require_tool(NGINX)
    root = served_dir()
    b = fast_board(root / "board", *[chart(f"c{i:02d}", inputs="data/v.txt") for i in range(CHARTS)])
    b.data("data/v.txt", "1 3 2\n")
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    server = Nginx(b.output, root / "nginx").start()
    LONG_LIVED.add(server.proc.pid)
    try:
        yield b, server
    finally:
        server.stop()
        LONG_LIVED.discard(server.proc.pid if server.proc else -1)
        remove_tree(root)


MARKED = """() => [...document.querySelectorAll('.card:target')].map((c) => {
  const r = c.getBoundingClientRect();
  return [c.dataset.name, r.top >= -1 && r.top < innerHeight, getComputedStyle(c).outlineStyle];
})"""


def test_an_alert_link_to_a_chart_shows_and_marks_its_card(many, context):  # noqa: F811
    _, server = many
    page, log = open_page(context(viewport={"width": 480, "height": 320}), server.url + "#c37")
    wait_for(lambda: page.evaluate(MARKED) == [["c37", True, "solid"]], 60,
             f"c37's card on screen and marked ({page.evaluate(MARKED)})")
    assert page.evaluate("scrollY") > 0 and page.evaluate("location.hash") == "#chart-c37"
    page.evaluate("location.hash = 'c03'")  # another link, in the same page
    wait_for(lambda: page.evaluate(MARKED) == [["c03", True, "solid"]], 60,
             f"c03's card marked instead ({page.evaluate(MARKED)})")
    page.evaluate("location.hash = 'nothing-here'")  # no such chart: nothing marked
    wait_for(lambda: page.evaluate(MARKED) == [], 60, "no card marked")
    assert page.evaluate("location.hash") == "#nothing-here"
    assert log.problems() == []
