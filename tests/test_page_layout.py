"""The page as a person reads it, measured in headless Chromium behind nginx at 1400×1000 and
1920×1080: columns that use the width, headings in line with their cards, the text next to its
image, a lone card that takes its row, a waiting chart that says so, an empty family in its own
group's section that follows the state filter. Measured from element boxes (and, for the gap
between a card's text and its chart, from the image's own pixels)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, NGINX, Nginx, PageLog, launch_chromium, remove_tree, require_tool, served_dir

from conftest import Board

PLOTS = '''
def line(fig, inputs, **params):
    ax = fig.add_subplot()
    values = [float(v) for p in inputs for v in open(p).read().split()] or [0.0]
    ax.plot(range(len(values)), values)
    ax.set_xlim(0, max(len(values) - 1, 1))
    ax.set_ylabel("requests / s")
    ax.grid(alpha=0.3)
'''

CHART = """
[[charts]]
name = "{name}"
title = "{title}"
description = "{desc}"
group = "{group}"
plot = "plots:line"
inputs = ["data/{data}.txt"]
"""
FAMILY = """
[[charts]]
name = "{name}-{{stem}}"
foreach = "nothing/{name}-*.txt"
group = "{group}"
plot = "plots:line"
inputs = ["{{path}}"]
"""
W, H = 560, 260  # the demo board's charts: size [5.6, 2.6] at 100 dpi


def board_text() -> str:
    text = f"""
[board]
title = "Layout board"
workers = 2
render_timeout = "60s"

[defaults]
size = [{W / 100}, {H / 100}]
dpi = 100
hidpi = false
"""
    charts = [("web1", "Requests", "Requests per second, last 10 minutes", "Web traffic", "a"),
              ("web2", "Latency", "p50, p95 and p99 latency per second, last 10 minutes", "Web traffic", "a"),
              ("cpu", "CPU", "Per-host CPU utilisation, last 10 minutes", "Capacity", "a"),
              ("queue", "Queue", "Jobs waiting for a worker; its file is not there yet", "Capacity", "queue"),
              *[(f"disk{i}", f"Disk {i}", f"Space used on volume {i}", "Disks", "a") for i in range(1, 5)],
              ("solo", "Alone", "The only chart of its group", "Solo", "a"),
              ("quiet1", "Quiet one", "", "Quiet", "a"), ("quiet2", "Quiet two", "", "Quiet", "a")]  # no descriptions
    for name, title, desc, group, data in charts:
        text += CHART.format(name=name, title=title, desc=desc, group=group, data=data)
        if name == "web2":
            text += FAMILY.format(name="nic", group="Web traffic")  # empty, in the first group
    return text + FAMILY.format(name="tape", group="Tapes")  # empty, in a group of its own


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    require_tool(NGINX)
    root = served_dir()
    try:
        board = Board(root / "board").write(board_text(), plots=PLOTS)
        board.data("data/a.txt", " ".join(str((i * 37) % 101) for i in range(200)))
        result = board.cli("build")
        assert result.returncode == 0, result.stderr
        with Nginx(board.output, root / "nginx") as server:
            yield server.url
    finally:
        remove_tree(root)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_tool(CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(autouse=True)
def no_leaks():
    """The module's browser and nginx outlive each test (conftest's guard would count them)."""
    yield


MEASURE = """() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top + scrollY,
                                                                    bottom: r.bottom + scrollY, width: r.width}; };
  // Where the chart's ink starts in the image (its first row that is not the background), in page pixels.
  function inkTop(img) {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data, bg = [d[0], d[1], d[2]];
    for (let y = 0; y < c.height; y++)
      for (let x = 0; x < c.width; x++) {
        const i = 4 * (y * c.width + x);
        if (Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 60)
          return box(img).top + y * img.getBoundingClientRect().height / c.height;
      }
    return box(img).bottom;
  }
  function textBottom(card) {
    const desc = card.querySelector(".desc");
    const el = desc && desc.offsetParent && desc.textContent.trim() ? desc : card.querySelector("h2");
    const range = document.createRange();
    range.selectNodeContents(el);
    return range.getBoundingClientRect().bottom + scrollY;
  }
  const sections = [...document.querySelectorAll("section.group")].map((s) => {
    const grid = s.querySelector(".grid"), cs = getComputedStyle(grid);
    const cards = [...s.querySelectorAll(".card[data-name]")].map((c) => {
      const img = c.querySelector(".fig img");
      return {name: c.dataset.name, box: box(c), badge: c.querySelector(".badge").textContent,
              wait: c.querySelector(".wait").hidden ? null : c.querySelector(".wait").textContent,
              img: img && {box: box(img), natural: img.naturalWidth}, gap: img ? inkTop(img) - textBottom(c) : null};
    });
    return {id: s.dataset.group, hidden: s.hidden, heading: box(s.querySelector(".group-title")),
            summary: box(s.querySelector(".summary")),
            row: {left: box(grid).left + parseFloat(cs.paddingLeft), right: box(grid).right - parseFloat(cs.paddingRight)},
            cards, families: [...s.querySelectorAll(".card.family-empty")].map((f) => ({name: f.dataset.family,
                                                                                      hidden: f.hidden}))};
  });
  return {width: document.documentElement.clientWidth, sections};
}"""


def open_page(browser, url: str, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    log = PageLog(page)
    page.goto(url, wait_until="load")
    page.evaluate("() => { for (const i of document.images) i.loading = 'eager'; }")  # below the fold too
    page.wait_for_function("() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)"
                           " && !document.getElementById('filter').hidden", timeout=60_000)
    return context, page, log


def columns(cards: list[dict]) -> int:
    return len({round(c["box"]["left"]) for c in cards})


@pytest.mark.parametrize("width, height", [(1400, 1000), (1920, 1080)])
def test_the_page_uses_the_width_and_lines_up(browser, served, width, height):
    context, page, log = open_page(browser, served, width, height)
    try:
        m = page.evaluate(MEASURE)
    finally:
        context.close()
    sections = {s["id"]: s for s in m["sections"]}
    assert list(sections) == ["web-traffic", "capacity", "disks", "solo", "quiet", "tapes"]
    disks = sections["disks"]["cards"]
    # Three or more columns at 1920 (two at 1400), each card near its natural size, rows using the width.
    assert columns(disks) >= (3 if width >= 1900 else 2), disks
    for s in m["sections"]:
        for c in s["cards"]:
            scale = c["img"]["box"]["width"] / c["img"]["natural"]
            if s["id"] != "solo":
                assert 0.9 <= scale <= 1.085, (s["id"], c)
            assert c["box"]["right"] <= m["width"], c  # nothing runs off the page
    row = sections["disks"]["row"]
    first_row = [c for c in disks if abs(c["box"]["top"] - disks[0]["box"]["top"]) < 1]
    empty = row["right"] - max(c["box"]["right"] for c in first_row)
    assert empty < 0.2 * (disks[0]["box"]["width"] + 16), (empty, first_row)  # not a column's worth left empty
    # Headings and summaries start where their cards do.
    for s in m["sections"]:
        assert abs(s["heading"]["left"] - s["row"]["left"]) <= 1, s
        assert all(abs(c["box"]["left"] - s["row"]["left"]) <= 1 for c in s["cards"][:1]), s
    # No wide gap between a card's text (its description, or its title without one) and its chart
    # (the image's first inked row).
    gaps = [c["gap"] for s in m["sections"] for c in s["cards"]]
    assert max(gaps) <= 20, gaps
    # A group of one card does not leave half its row empty.
    solo = sections["solo"]
    assert solo["cards"][0]["box"]["width"] > 0.5 * (solo["row"]["right"] - solo["row"]["left"]), solo
    assert solo["cards"][0]["img"]["box"]["bottom"] - solo["cards"][0]["img"]["box"]["top"] <= height - 150
    assert log.problems() == []


@pytest.mark.parametrize("width, height", [(1400, 1000), (1920, 1080)])
def test_a_waiting_chart_and_empty_families_read_as_such_and_follow_the_filter(browser, served, width, height):
    context, page, log = open_page(browser, served, width, height)
    try:
        m = page.evaluate(MEASURE)
        sections = {s["id"]: s for s in m["sections"]}
        queue = next(c for c in sections["capacity"]["cards"] if c["name"] == "queue")
        assert queue["badge"] == "pending" and queue["wait"] == "waiting for data/queue.txt", queue
        assert [f["name"] for f in sections["web-traffic"]["families"]] == ["nic-{stem}"]
        assert [f["name"] for f in sections["tapes"]["families"]] == ["tape-{stem}"]
        assert all(not s["families"] for s in m["sections"] if s["id"] not in ("web-traffic", "tapes"))
        # The Tapes heading lines up with its family's card.
        tape_left = page.evaluate("() => document.querySelector('.family-empty[data-family^=tape]')"
                                  ".getBoundingClientRect().left")
        assert abs(sections["tapes"]["heading"]["left"] - tape_left) <= 1

        page.select_option("#filter select", "error")
        m = {s["id"]: s for s in page.evaluate(MEASURE)["sections"]}
        assert all(s["hidden"] for s in m.values()), m  # nothing is in error: every section hides
        page.select_option("#filter select", "pending")
        m = {s["id"]: s for s in page.evaluate(MEASURE)["sections"]}
        assert [i for i, s in m.items() if not s["hidden"]] == ["web-traffic", "capacity", "tapes"]
        assert not m["tapes"]["families"][0]["hidden"] and not m["web-traffic"]["families"][0]["hidden"]
        page.select_option("#filter select", "ok")
        m = {s["id"]: s for s in page.evaluate(MEASURE)["sections"]}
        assert m["tapes"]["hidden"] and m["web-traffic"]["families"][0]["hidden"]
        assert [i for i, s in m.items() if not s["hidden"]] == ["web-traffic", "capacity", "disks", "solo", "quiet"]
        page.select_option("#filter select", "")
        m = {s["id"]: s for s in page.evaluate(MEASURE)["sections"]}
        assert not any(s["hidden"] for s in m.values()) and not m["tapes"]["families"][0]["hidden"]
    finally:
        context.close()
    assert log.problems() == []
