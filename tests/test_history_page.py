"""The history view on the page (issue 26), in a real Chromium behind real nginx: a chart that keeps
past images opens from its image (or #history-NAME) in a dialog that steps back through them with
the keyboard or the mouse, shows each one's time and state, goes back to live, and loads
history/NAME.json only when opened; a board without history is as it was."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from browser import NGINX, Nginx, PageLog, open_page, remove_tree, require_tool, served_dir, wait_for
from conftest import Board, chart, fast_board, write_data
from test_page import LONG_LIVED, browser, context, no_leaks  # noqa: F401 - the module's fixtures


@pytest.fixture(scope="module")
def kept() -> Iterator[tuple[Board, Nginx, list[bytes]]]:
    """A board whose chart cpu (history = 3) changed 4 times after its first image; mem keeps none."""
    require_tool(NGINX)
    root = served_dir()
    b = fast_board(root / "board", chart("cpu", inputs="data/cpu.txt", extra='history = 3\ntitle = "CPU"'),
                   chart("mem", inputs="data/cpu.txt"), refresh="1s")
    b.file.write_text(b.file.read_text().replace("[defaults]", '[defaults]\nhidpi = true').replace("hidpi = false\n", ""))
    b.data("data/cpu.txt", "1 2 3\n")
    images = []
    for i in range(5):
        write_data(b.root / "data/cpu.txt", [i, 3, i * 2, 1])
        result = b.cli("build")
        assert result.returncode == 0, result.stderr
        images.append((b.output / "cpu.png").read_bytes())
    server = Nginx(b.output, root / "nginx").start()
    LONG_LIVED.add(server.proc.pid)
    try:
        yield b, server, images
    finally:
        server.stop()
        LONG_LIVED.discard(server.proc.pid if server.proc else -1)
        remove_tree(root)


VIEW = """() => {
  const v = document.querySelector('.hist'), img = v && v.querySelector('img');
  return v && {open: !v.hidden, src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
               state: v.querySelector('.badge').textContent, when: v.querySelector('time').dateTime,
               where: v.querySelector('output').value, max: +v.querySelector('input').max,
               value: +v.querySelector('input').value, title: v.querySelector('h2').textContent,
               focusInside: v.contains(document.activeElement)};
}"""


def view(page: Any) -> dict:
    return page.evaluate(VIEW)


def history_requests(log: PageLog) -> list[str]:
    return [url for _, url in log.requests if "/history/" in url]


def test_clicking_the_image_opens_the_view_which_steps_back_and_returns_to_live(kept, context):
    board, server, images = kept
    entries = json.loads((board.output / "history" / "cpu.json").read_text())
    assert len(entries) == 3
    page, log = open_page(context(), server.url)
    assert history_requests(log) == []  # nothing of the history before the view is opened
    live_src = page.evaluate("document.querySelector('.card[data-name=cpu] .fig img').getAttribute('src')")
    page.click(".card[data-name=cpu] .fig")
    wait_for(lambda: (v := view(page)) and v["open"] and v["max"] == 3, 60, "the view with 3 past images")
    assert page.evaluate("location.hash") == "#history-cpu"
    v = view(page)
    assert v["src"] == live_src and v["where"] == "live" and v["value"] == 3 and v["title"] == "CPU: history"
    assert v["focusInside"]
    assert any(u.split("?")[0].endswith("/history/cpu.json") for u in history_requests(log))
    for i, entry in enumerate(entries):  # ← steps back, newest first
        page.keyboard.press("ArrowLeft")
        wait_for(lambda: view(page)["src"] == entry["image"] and view(page)["loaded"], 60, f"past image {i + 1}")
        v = view(page)
        assert v["when"] == entry["rendered_at"] and v["state"] == entry["state"] == "ok"
        assert v["where"] == f"{i + 1} of 3 back" and v["value"] == 2 - i
        shown = page.evaluate("fetch(document.querySelector('.hist img').src).then((r) => r.arrayBuffer())"
                              ".then((b) => [...new Uint8Array(b)])")
        assert bytes(shown) == images[3 - i]  # the image of that moment
    assert page.evaluate("document.querySelector('.hist button').disabled")  # ‹ older: none older
    page.click(".hist button:text('live')")
    wait_for(lambda: view(page)["src"] == live_src, 60, "back to live")
    page.click(".hist button:text('‹ older')")
    wait_for(lambda: view(page)["src"] == entries[0]["image"], 60, "the newest past image by the button")
    page.fill(".hist input[type=range]", "0")  # the slider's left end: the oldest
    wait_for(lambda: view(page)["src"] == entries[-1]["image"], 60, "the oldest past image by the slider")
    page.keyboard.press("Escape")
    wait_for(lambda: not view(page)["open"], 60, "the view to close")
    assert page.evaluate("location.hash") == "#chart-cpu"
    assert page.evaluate("document.activeElement.closest('.card').dataset.name") == "cpu"
    assert log.problems() == [] and len(log.documents) == 1


def test_the_view_is_addressable_and_keyboard_accessible(kept, context):
    board, server, _ = kept
    page, log = open_page(context(), server.url + "#history-cpu")  # a link to the view
    wait_for(lambda: (v := view(page)) and v["open"] and v["max"] == 3, 60, "the view opened from the URL")
    page.click(".hist a.close")
    wait_for(lambda: not view(page)["open"], 60, "the view to close by its link")
    page.focus(".card[data-name=cpu] a.fig")
    page.keyboard.press("Enter")
    wait_for(lambda: view(page)["open"], 60, "the view opened with Enter")
    page.keyboard.press("End")
    page.keyboard.press("Home")
    wait_for(lambda: view(page)["where"] == "3 of 3 back", 60, "Home: the oldest")
    for _ in range(6):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert view(page)["focusInside"]
    page.go_back()  # the browser's back button closes it too
    wait_for(lambda: not view(page)["open"], 60, "back to close the view")
    # mem keeps no history: its image is a plain link, as on any board
    assert page.evaluate("document.querySelector('.card[data-name=mem]').hasAttribute('data-history')") is False
    assert log.problems() == []


def test_a_new_image_while_the_view_is_open_becomes_its_newest_past_image(kept, context):
    board, server, images = kept
    page, log = open_page(context(), server.url + "#history-cpu")
    wait_for(lambda: (v := view(page)) and v["open"] and v["max"] == 3, 60, "the view")
    before = view(page)["src"]
    write_data(board.root / "data/cpu.txt", [9, 1, 9, 1])
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    newest = json.loads((board.output / "history" / "cpu.json").read_text())[0]
    wait_for(lambda: (v := view(page))["src"] != before and v["where"] == "live" and v["loaded"], 60,
             "the live image to follow the board")
    page.keyboard.press("ArrowLeft")
    wait_for(lambda: view(page)["src"] == newest["image"], 60, "the image just replaced, one step back")
    assert log.problems() == []


def test_a_board_without_history_has_no_history_view_at_all(tmp_path):
    b = fast_board(tmp_path / "b", chart("cpu", inputs="data/cpu.txt"))
    b.data("data/cpu.txt", "1 2 3\n")
    assert b.cli("build").returncode == 0
    assert sorted(p.name for p in (b.output / "static").iterdir()) == ["board.css", "board.js"]
    assert "history" not in (b.output / "index.html").read_text()
    assert not (b.output / "history").exists()
