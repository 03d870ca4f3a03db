"""Screenshots of the board `plotboard demo` shows, for the README, light and dark.

For each theme: installs the embedded demo board (renderer/demo_board) into a temporary folder
with renderer.demo.install, sets its theme, starts its synthetic feeder (a made-up history, then
a step a second) and `python -m renderer run` on it, waits until every chart and every time
window has rendered, serves the output folder with nginx running deploy/nginx.conf and
photographs the live page in headless Chromium: the same tooling as the page tests
(tests/browser.py). In the light theme the latency chart keeps history (HISTORY), and its history
view, a few images back, is photographed too (history-light.png); the disks are zoomable (ZOOM)
and the daemon serves too (`run --serve`), so one disk's card is photographed zoomed in by a drag
across its week (zoom-light.png).

    python scripts/screenshots.py [--out docs/screenshots]

Needs /usr/bin/chromium and /usr/sbin/nginx (Debian's chromium and nginx-light) and Playwright.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from browser import (  # noqa: E402
    ALL_IMAGES_LOADED, CHROMIUM, NGINX, POLL_URL, Nginx, free_port, launch_chromium, missing_tool, remove_tree,
    served_dir,
)
from daemon_helpers import cli_env, wait_for  # noqa: E402

from renderer.demo import DATA_DIR, OUTPUT, install, load_feeder  # noqa: E402

THEMES = ("light", "dark")
WIDTH = 1400  # wide enough for two of the demo's 640-pixel charts side by side
HEIGHT = 1000  # the first view; the shot is of the whole page
SEED = 11  # the feeder's random draws, so each run shows the same surges (the waves follow the clock)
SWITCHED = {"disk-web-1": "1d", "disk-worker-1": "7d"}  # cards shown in another window than their first
HISTORY = ("latency", 30, 6)  # the chart given `history`, how many past images it keeps, how far back the shot is
ZOOM = ("disk-{match}", "disk-web-1", "7d", (0.55, 0.8))  # the family made zoomable; the card, window and drag shot


def demo_board(folder: Path, theme: str, history: bool = False) -> Path:
    """The embedded demo board installed in folder with the given theme (and `history` on the
    HISTORY chart, `zoom` on the ZOOM family); returns its board file."""
    board_file = install(folder)
    text, n = re.subn(r'(?m)^theme = "\w+"$', f'theme = "{theme}"', board_file.read_text())
    if history:
        text, m = re.subn(rf'(?m)^name = "{HISTORY[0]}"$', f'name = "{HISTORY[0]}"\nhistory = {HISTORY[1]}', text)
        text, z = re.subn(rf'(?m)^name = "{re.escape(ZOOM[0])}"$', f'name = "{ZOOM[0]}"\nzoom = true', text)
        n = n if m == z == 1 else 0
    if n != 1:
        raise SystemExit("the demo board no longer sets theme (or names its charts) on a line of its own")
    board_file.write_text(text)
    return board_file


def everything_rendered(output: Path) -> bool:
    """Every chart, and every window of every chart, rendered and ok."""
    try:
        charts = json.loads((output / "status.json").read_text())["charts"]
    except (OSError, ValueError, KeyError):
        return False
    entries = charts + [w for c in charts for w in c.get("windows") or ()]
    return bool(charts) and all(e["state"] == "ok" for e in entries)


@contextmanager
def live_demo(board_file: Path, serve: int | None = None) -> Iterator[Path]:
    """What `plotboard demo` runs (its feeder in a thread, the daemon, serving on port `serve` if
    given) on board_file, until every chart is rendered; yields the output folder and stops both
    on the way out."""
    root = board_file.parent
    feeder = load_feeder().Feeder(root / DATA_DIR, seed=SEED)
    feeder.backfill(time.time())
    feeder.write()
    stop = threading.Event()
    thread = threading.Thread(target=feeder.run, args=(stop,), name="demo-feeder")
    thread.start()
    log = open(root / "run.log", "w")
    serving = ["--serve", str(serve)] if serve else []
    daemon = subprocess.Popen([sys.executable, "-m", "renderer", "run", "-c", str(board_file), *serving], cwd=root,
                              env=cli_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            if daemon.poll() is not None:
                raise SystemExit(f"plotboard run exited ({daemon.returncode}):\n{(root / 'run.log').read_text()}")
            return everything_rendered(root / OUTPUT)

        wait_for(ready, timeout=120, what="the demo board to render every chart and window")
        yield root / OUTPUT
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        stop.set()
        thread.join()


def shoot(browser: Any, url: str, dest: Path) -> None:
    """The whole page, WIDTH pixels wide, once the page has polled the board and every image is in."""
    from PIL import Image

    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        page = context.new_page()
        with page.expect_response(lambda r: r.url.endswith(POLL_URL), timeout=10_000):
            page.goto(url)
        page.wait_for_function("() => document.querySelector('.age').textContent.endsWith(' ago')", timeout=10_000)
        for name, window in SWITCHED.items():  # as a viewer would, to show that the windows differ
            page.click(f"#chart-{name} .windows a[data-window='{window}']")
            page.wait_for_function(f"() => document.querySelector('#chart-{name} img').src.includes('.{window}.png')",
                                   timeout=10_000)
        # Images off screen load only once scrolled into view: make the whole page the view.
        height = page.evaluate("() => document.documentElement.scrollHeight")
        page.set_viewport_size({"width": WIDTH, "height": height})
        page.wait_for_function(ALL_IMAGES_LOADED, timeout=10_000)
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    finally:
        context.close()
    save(shot, dest)


def shoot_history(browser: Any, url: str, dest: Path) -> None:
    """The HISTORY chart's history view, stepped a few images back, as a viewer opens it (#history-NAME)."""
    from PIL import Image

    name, _, back = HISTORY
    context = browser.new_context(viewport={"width": WIDTH, "height": 760})
    try:
        page = context.new_page()
        page.goto(url + f"#history-{name}")
        page.wait_for_function(f"() => +document.querySelector('.hist input').max >= {back}", timeout=60_000)
        for _ in range(back):
            page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => { const i = document.querySelector('.hist img'); return i.complete && i.naturalWidth > 0 }",
                               timeout=10_000)
        shot = Image.open(io.BytesIO(page.screenshot()))
    finally:
        context.close()
    save(shot, dest)


def shoot_zoom(browser: Any, url: str, dest: Path) -> None:
    """The ZOOM card in its ZOOM window, then zoomed in by a drag across part of it, as a viewer
    does on a page the daemon serves."""
    from PIL import Image

    _, name, window, (a, b) = ZOOM
    context = browser.new_context(viewport={"width": WIDTH, "height": 760})
    try:
        page = context.new_page()
        page.goto(url + f"#chart-{name}")
        card = page.locator(f"#chart-{name}")
        card.locator("[data-zoom]").wait_for(timeout=60_000)
        card.locator(f".windows a[data-window='{window}']").click()
        page.wait_for_function(f"() => document.querySelector('#chart-{name} .fig img').src.includes('.{window}.png')",
                               timeout=10_000)
        box = card.locator(".fig img").bounding_box()
        y = box["y"] + box["height"] / 2
        with page.expect_response(lambda r: "/render/" in r.url and r.status == 200, timeout=60_000):
            page.mouse.move(box["x"] + a * box["width"], y)
            page.mouse.down()
            page.mouse.move(box["x"] + b * box["width"], y, steps=8)
            page.mouse.up()
        page.wait_for_function(f"() => {{ const i = document.querySelector('#chart-{name} img.zoomed');"
                               " return i && i.complete && i.naturalWidth > 0 }", timeout=60_000)
        shot = Image.open(io.BytesIO(card.screenshot()))
    finally:
        context.close()
    save(shot, dest)


def save(shot: Any, dest: Path) -> None:
    from PIL import Image

    # A 256-colour palette keeps the file small; charts on a flat background lose nothing visible.
    shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        dest, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="where the PNGs go")
    args = parser.parse_args(argv)
    for tool in (CHROMIUM, NGINX):
        if reason := missing_tool(tool):
            raise SystemExit(reason)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    root = served_dir("plotboard-screenshots-")
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                for theme in THEMES:
                    board_file = demo_board(root / theme, theme, history=theme == "light")
                    port = free_port()
                    with live_demo(board_file, port) as output, Nginx(output, root / f"nginx-{theme}") as server:
                        dests = [args.out / f"board-{theme}.png"]
                        shoot(browser, server.url + "board/", dests[0])
                        if theme == "light":
                            dests.append(args.out / "history-light.png")
                            shoot_history(browser, server.url + "board/", dests[1])
                            dests.append(args.out / "zoom-light.png")
                            shoot_zoom(browser, f"http://127.0.0.1:{port}/", dests[2])
                        for dest in dests:
                            print(f"wrote {dest} ({dest.stat().st_size // 1024} KiB)")
            finally:
                browser.close()
    finally:
        remove_tree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
