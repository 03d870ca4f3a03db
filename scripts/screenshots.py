"""Screenshots of the repository's demo board for the README, light and dark.

Builds copies of the demo board (plotboard.toml, charts.py, data/ at the repository root; the
dark one with theme = "dark") with `python -m renderer build`, serves each with nginx running
deploy/nginx.conf and photographs it in headless Chromium: the same tooling as the page tests
(tests/browser.py).

    python scripts/screenshots.py [--out docs/screenshots]

Needs /usr/bin/chromium and /usr/sbin/nginx (Debian's chromium and nginx-light) and Playwright.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from browser import (  # noqa: E402
    ALL_IMAGES_LOADED, CHROMIUM, NGINX, Nginx, launch_chromium, missing_tool, remove_tree, served_dir,
)

THEMES = ("light", "dark")
VIEWPORT = {"width": 1280, "height": 800}


def demo_copy(folder: Path, theme: str) -> Path:
    """A copy of the demo board in folder with the given theme; returns its board file."""
    folder.mkdir()
    shutil.copy(REPO / "charts.py", folder)
    shutil.copytree(REPO / "data", folder / "data")
    text, n = re.subn(r'(?m)^theme = "\w+"$', f'theme = "{theme}"', (REPO / "plotboard.toml").read_text())
    if n != 1:
        raise SystemExit("plotboard.toml no longer sets theme on a line of its own")
    (folder / "plotboard.toml").write_text(text)
    return folder / "plotboard.toml"


def build(board_files: list[Path]) -> None:
    """`python -m renderer build` on every board, all at once."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    procs = [subprocess.Popen([sys.executable, "-m", "renderer", "build", "-c", str(f)], cwd=f.parent, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for f in board_files]
    for f, proc in zip(board_files, procs):
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"build of {f} failed:\n{out}")


def shoot(browser, url: str, dest: Path) -> None:
    """The whole page at 1280 px wide once every image and the first status.json poll are in."""
    from PIL import Image

    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        with page.expect_response(lambda r: r.url.endswith("/status.json"), timeout=10_000):
            page.goto(url)
        page.wait_for_function(ALL_IMAGES_LOADED, timeout=10_000)
        page.wait_for_function("() => document.querySelector('.age').textContent.endsWith(' ago')", timeout=10_000)
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    finally:
        context.close()
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
        files = {theme: demo_copy(root / theme, theme) for theme in THEMES}
        build(list(files.values()))
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                for theme, board_file in files.items():
                    with Nginx(board_file.parent / "public", root / f"nginx-{theme}") as server:
                        dest = args.out / f"board-{theme}.png"
                        shoot(browser, server.url + "board/", dest)
                        print(f"wrote {dest} ({dest.stat().st_size // 1024} KiB)")
            finally:
                browser.close()
    finally:
        remove_tree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
