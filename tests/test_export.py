"""`plotboard export`: the board as published, as one self-contained HTML file, checked on real
builds with the real CLI: parsed with html.parser (no URL but data: anywhere, every card with its
state, errors escaped), and opened in headless Chromium from file:// with every other request
aborted."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, Board, Snapshot, cli, cli_env, wait_for

PLOTS = '''
import numpy as np

def line(fig, inputs, **params):
    ax = fig.add_subplot()
    for path in inputs:
        ax.plot([float(v) for v in open(path).read().split()])
    ax.set_title(params.get("window_name", ""))

def boom(fig, inputs, **params):
    raise ValueError("<script>alert('x')</script> & <b>bold</b>")

def noise(fig, inputs, **params):
    w, h = fig.canvas.get_width_height()
    rng = np.random.default_rng(params["seed"])
    fig.figimage(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))  # incompressible: a PNG of ~3 bytes a pixel
'''

BOARD = """
[board]
title = "Export <board>"
workers = 2
render_timeout = "30s"
page_limit = 2  # split: index.html lists the groups, each with its own page

[defaults]
size = [4, 2]
dpi = 50
hidpi = false

[[charts]]
name = "cpu"
title = "CPU load"
description = "load, see <a href='http://example.com/cpu'>the runbook</a>"
plot = "plots:line"
inputs = ["data/cpu.txt"]
group = "Hosts"
windows = ["1h", "1d"]

[[charts]]
name = "fresh"
title = "Fresh chart"
plot = "plots:line"
inputs = ["data/fresh.txt"]
group = "Hosts"
stale_after = "1s"

[[charts]]
name = "mem"
title = "Memory"
plot = "plots:line"
inputs = ["data/mem.txt"]
group = "Services"

[[charts]]
name = "broken"
title = "Broken chart"
plot = "plots:boom"
group = "Services"
"""

DATA = {"data/cpu.txt": "1 3 2 5 4\n", "data/fresh.txt": "2 2 3\n", "data/mem.txt": "5 4 3 2 1\n"}
ERROR = "ValueError: <script>alert('x')</script> & <b>bold</b>"
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "cite",
                  "longdesc", "manifest", "ping", "xlink:href", "content"}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Snapshot:
    top = tmp_path_factory.mktemp("export")
    b = Board(top / "board").write(BOARD, PLOTS)
    for name, text in DATA.items():
        b.data(name, text)
    result = b.cli("build")
    assert result.returncode == 1 and "1 failed" in result.stderr, result.stderr  # `broken` fails
    return Snapshot(b, top / "snapshot", result)


@pytest.fixture
def built(snapshot: Snapshot) -> Board:
    return snapshot.restore()


def export(board: Board, *args: str, cwd: Path | None = None, **env: str):
    return cli("export", "-c", str(board.file), *args, cwd=cwd or board.root, **env)


class Page(HTMLParser):
    """What a test asserts of an exported page: every tag with its attributes, <style> text,
    cards by name, and the text of elements by class."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self.cards: dict[str, dict[str, Any]] = {}
        self.sections: list[str] = []
        self._card: dict[str, Any] | None = None
        self._stack: list[tuple[str, str]] = []  # (tag, class) of open elements inside a card
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "style":
            self._in = "style"
        if tag == "h2" and "group-title" in a.get("class", ""):
            self._in = "group-title"
            self.sections.append("")
        if tag == "article" and a.get("id", "").startswith("chart-"):
            self._card = self.cards[a["id"][len("chart-"):]] = {"state": a.get("data-state"), "imgs": [],
                                                                 "text": {}}
        if self._card is not None:
            if tag == "img":
                self._card["imgs"].append(a)
            if tag not in ("img", "br", "meta"):
                self._stack.append((tag, a.get("class", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "h2"):
            self._in = None
        if self._card is not None and self._stack:
            self._stack.pop()
            if tag == "article" and not self._stack:
                self._card = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.styles.append(data)
        elif self._in == "group-title":
            self.sections[-1] += data
        if self._card is not None:
            for _, cls in self._stack:
                for c in cls.split():
                    self._card["text"][c] = self._card["text"].get(c, "") + data


def problems_with_urls(page: Page) -> list[str]:
    """Every attribute or style that holds a URL other than a data: image."""
    found = []
    for tag, attrs in page.tags:
        if tag in ("script", "link", "iframe", "object", "embed", "base", "a", "form", "audio", "video", "source"):
            found.append(f"<{tag} {attrs}>")
        if tag == "meta" and attrs.get("http-equiv"):
            found.append(f"<meta {attrs}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"<{tag} {name}=...>: a script")
            if name in URL_ATTRIBUTES and name != "content" and not value.startswith("data:image/png;base64,"):
                found.append(f"<{tag} {name}={value[:80]!r}>")
            if name == "content" and re.search(r"(url|https?:|file:|//)", value, re.IGNORECASE):
                found.append(f"<{tag} content={value!r}>")
            if name == "style" and re.search(r"url\s*\(|@import", value, re.IGNORECASE):
                found.append(f"<{tag} style={value!r}>")
    for css in page.styles:
        for match in re.finditer(r"url\s*\(([^)]*)\)|@import[^;]*", css, re.IGNORECASE):
            if not (match.group(1) or "").strip("\"' ").startswith("data:"):
                found.append(f"<style>: {match.group(0)}")
    return found


def inlined(img: dict[str, str]) -> bytes:
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix), img["src"][:80]
    return base64.b64decode(img["src"][len(prefix):], validate=True)


def states_now(board: Board) -> dict[str, str]:
    out = board.cli("status", "--json")
    return {c["name"]: c["state"] for c in json.loads(out.stdout)["charts"]}


def fresh_turned_stale(board: Board) -> None:
    """Wait until the chart `fresh` (stale_after 1 s) is older than that."""
    rendered = datetime.fromisoformat(board.chart("fresh")["rendered_at"].replace("Z", "+00:00")).timestamp()
    wait_for(lambda: time.time() > rendered + 1.2, 60, "`fresh` to be older than its stale_after (1 s)")


def test_the_export_holds_every_card_with_its_state_and_image_inline_and_no_url(built, tmp_path):
    fresh_turned_stale(built)
    target = tmp_path / "out" / "board.html"
    target.parent.mkdir()
    result = export(built, "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""
    text = target.read_text()
    page = Page(text)

    assert problems_with_urls(page) == []
    assert not any(tag == "img" and not a["src"].startswith("data:") for tag, a in page.tags)
    # Every chart's card, with the state `plotboard status` judges now (fresh turned stale since the build).
    states = states_now(built)
    assert states == {"cpu": "ok", "fresh": "stale", "mem": "ok", "broken": "error"}
    assert {name: card["state"] for name, card in page.cards.items()} == states
    # Each image inline is the published PNG's bytes; the later window is there too.
    assert [inlined(i) for i in page.cards["cpu"]["imgs"]] == [(built.output / "cpu.png").read_bytes(),
                                                              (built.output / "cpu.1d.png").read_bytes()]
    assert inlined(page.cards["mem"]["imgs"][0]) == (built.output / "mem.png").read_bytes()
    assert page.cards["broken"]["imgs"] == []
    assert "no image yet" in page.cards["broken"]["text"]["ph"]
    # The error as text, escaped: no tag of it made it into the page.
    assert page.cards["broken"]["text"]["err"] == ERROR
    assert "&lt;script&gt;" in text and "<script" not in text and "<b>" not in text
    # The description's link is text, not a link.
    assert page.cards["cpu"]["text"]["desc"] == "load, see <a href='http://example.com/cpu'>the runbook</a>"
    # Groups as on the board, in order, a split board's every group in this one file; ages as of the export.
    assert sorted(p.name for p in (built.output / "groups").iterdir()) == ["hosts.html", "services.html"]
    assert page.sections == ["Hosts", "Services"]
    assert re.search(r"rendered .* UTC, \d+ s ago at export", page.cards["mem"]["text"]["foot"])
    assert "<title>Export &lt;board&gt;" in text
    assert [p.name for p in target.parent.iterdir()] == ["board.html"]  # no temporary file left


def test_default_output_is_board_html_here_and_dash_writes_stdout(built, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    (here / "board.html").write_text("an older export")
    result = export(built, cwd=here)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in here.iterdir()) == ["board.html"]
    first = (here / "board.html").read_text()
    assert first.startswith("<!doctype html>") and set(Page(first).cards) == {"cpu", "fresh", "mem", "broken"}
    assert (here / "board.html").stat().st_mode & 0o777 == 0o644

    out = export(built, "-o", "-", cwd=here)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("<!doctype html>") and out.stdout.rstrip().endswith("</html>")
    assert set(Page(out.stdout).cards) == {"cpu", "fresh", "mem", "broken"}
    assert (here / "board.html").read_text() == first  # stdout only


def test_only_restricts_the_export_as_build_only_names_charts(built, tmp_path):
    out = export(built, "--only", "mem", "broken", "-o", "-")
    assert out.returncode == 0, out.stderr
    page = Page(out.stdout)
    assert list(page.cards) == ["mem", "broken"] and page.sections == ["Services"]
    # A later window's name selects its chart, as `build --only cpu.1d` renders that window of cpu.
    out = export(built, "--only", "cpu.1d", "-o", "-")
    assert out.returncode == 0, out.stderr
    assert list(Page(out.stdout).cards) == ["cpu"]

    bad = export(built, "--only", "mem", "nope", "cpu.7d", "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"plotboard: {built.file}: --only: no chart named cpu.7d, nope"
    assert not (tmp_path / "x.html").exists()


def test_a_board_never_built_exits_1_and_a_bad_board_file_2(board, tmp_path):
    out = export(board, "-o", str(tmp_path / "x.html"))
    assert out.returncode == 1
    assert out.stderr.strip() == f"plotboard: {board.output / 'status.json'}: nothing published yet; run plotboard build first"
    assert not (tmp_path / "x.html").exists()

    board.file.write_text(board.file.read_text() + "\nsurprise = 1\n")
    out = export(board, "-o", str(tmp_path / "x.html"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "surprise" in out.stderr and "Traceback" not in out.stderr

    missing = cli("export", "-c", str(tmp_path / "nowhere.toml"))
    assert missing.returncode == 2 and "nowhere.toml" in missing.stderr


def test_an_image_missing_a_fifo_or_not_a_png_shows_as_missing_in_its_card(built):
    (built.output / "mem.png").unlink()
    (built.output / "cpu.png").unlink()
    os.mkfifo(built.output / "cpu.png")  # never opened: a FIFO would block a plain open() for ever
    (built.output / "cpu.1d.png").write_bytes(b"not a png at all")
    (built.output / "fresh.png").write_bytes((built.output / "fresh.png").read_bytes()[:200])  # cut short
    out = export(built, "-o", "-", timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    page = Page(out.stdout)
    assert problems_with_urls(page) == []
    assert page.cards["mem"]["imgs"] == [] and page.cards["cpu"]["imgs"] == []
    assert page.cards["mem"]["text"]["ph"] == "image missing: mem.png: No such file or directory"
    assert page.cards["cpu"]["text"]["ph"].startswith("image missing: cpu.png: not a regular file but a FIFO")
    assert "image missing: cpu.1d.png is not a whole PNG" in page.cards["cpu"]["text"]["more"]
    assert page.cards["fresh"]["text"]["ph"] == "image missing: fresh.png is not a whole PNG"
    # As `plotboard status` judges them: an image status.json names that is gone is an error.
    assert page.cards["mem"]["state"] == "error" and page.cards["cpu"]["state"] == "error"
    assert "ImageMissing: mem.png" in page.cards["mem"]["text"]["err"]


def test_export_works_while_run_owns_the_board(built, daemons, tmp_path):
    d = daemons(built)
    d.wait_state("mem", state="ok")
    out = export(built, "-o", str(tmp_path / "live.html"))
    assert out.returncode == 0, out.stderr
    assert set(Page((tmp_path / "live.html").read_text()).cards) == {"cpu", "fresh", "mem", "broken"}
    d.alive()


BIG = """
[board]
title = "Big images"
workers = 2
render_timeout = "60s"

[defaults]
size = [20, 12]
dpi = 100
hidpi = false
plot = "plots:noise"
""" + "".join(f'\n[[charts]]\nname = "n{i}"\nparams = {{ seed = {i} }}\n' for i in range(3))


def test_an_export_over_25_mb_warns_on_one_line_naming_its_size(tmp_path):
    big = Board(tmp_path / "big").write(BIG, PLOTS)
    result = big.cli("build")
    assert result.returncode == 0, result.stderr
    pngs = sum((big.output / f"n{i}.png").stat().st_size for i in range(3))
    assert pngs > 19_000_000  # three 2000×1200 images of noise: over 25 MB once in base64

    out = export(big, "-o", str(tmp_path / "big.html"))
    assert out.returncode == 0, out.stderr
    size = (tmp_path / "big.html").stat().st_size
    assert size > 25_000_000
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"{tmp_path / 'big.html'} is {size / 1e6:.1f} MB, over 25 MB" in lines[0] and "--only" in lines[0]

    small = export(big, "--only", "n0", "-o", str(tmp_path / "small.html"))
    assert small.returncode == 0 and small.stderr == "", small.stderr


def test_opened_offline_in_chromium_it_requests_nothing_and_decodes_every_image(built, tmp_path):
    from browser import CHROMIUM, launch_chromium, require_tool

    require_tool(CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if IN_CI:
            pytest.fail(f"playwright is not installed: {exc}")
        pytest.skip(f"playwright is not installed: {exc}")
    fresh_turned_stale(built)
    target = tmp_path / "board.html"
    result = export(built, "-o", str(target))
    assert result.returncode == 0, result.stderr
    url = target.as_uri()
    requested: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            requested.append(r.request.url)
            r.abort()

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            ctx = browser.new_context(offline=True)
            page = ctx.new_page()
            seen: list[str] = []
            page.on("request", lambda r: seen.append(r.url))
            page.route("**/*", route)
            page.goto(url)
            page.evaluate("() => Promise.all([...document.images].map((i) => i.decode()))")
            widths = page.evaluate("() => [...document.images].map((i) => [i.alt, i.naturalWidth])")
            cards = page.evaluate("() => [...document.querySelectorAll('article.card')].map((a) => a.dataset.state)")
            ctx.close()
        finally:
            browser.close()
    assert requested == []
    assert [u for u in seen if u != url and not u.startswith("data:")] == []
    assert len(widths) == 4 and all(w == 200 for _, w in widths), widths  # cpu, its 1d window, fresh, mem
    assert sorted(cards) == ["error", "ok", "ok", "stale"]


def test_what_cannot_be_written_or_read_is_one_line_never_a_traceback(built, tmp_path):
    folder = export(built, "-o", str(tmp_path))
    assert folder.returncode == 2
    assert folder.stderr.strip() == f"plotboard: -o {tmp_path}: not a regular file; give a file name, or -o - for stdout"
    nowhere = export(built, "-o", str(tmp_path / "no" / "x.html"))
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip() == f"plotboard: cannot write {tmp_path / 'no' / 'x.html'}: No such file or directory"

    # stdout whose reader is gone before the first byte (`| head` that already left)
    read, write = os.pipe()
    os.close(read)
    try:
        gone = subprocess.run([sys.executable, "-m", "renderer", "export", "-c", str(built.file), "-o", "-"],
                              stdout=write, stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=120)
    finally:
        os.close(write)
    assert gone.returncode == 1
    assert gone.stderr.strip() == "plotboard: export: stdout was closed before the end of the export"

    (built.output / "status.json").write_text('{"charts": 3}')
    bad = export(built, "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "status.json: not a plotboard manifest" in bad.stderr
    (built.output / "status.json").unlink()
    os.mkfifo(built.output / "status.json")
    fifo = export(built, "-o", str(tmp_path / "x.html"), timeout=60)
    assert fifo.returncode == 1
    assert fifo.stderr.strip() == f"plotboard: cannot export: {built.output / 'status.json'}: not a regular file but a FIFO"
    assert not (tmp_path / "x.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left anywhere


def test_a_manifest_with_fields_of_other_types_exports_without_a_traceback(built):
    manifest = built.status()
    first = manifest["charts"][0]
    first.update(title=5, group={"a": 1}, image="../../etc/passwd.png", windows="x", waiting_for="abc", warning=[1])
    manifest["charts"][1].update(windows=[3, {"name": {"n": 1}, "image": None, "rendered_at": "x"}])
    manifest["families"] = {"not": "a list"}
    manifest["board"] = "nothing"
    (built.output / "status.json").write_text(json.dumps(manifest))
    out = export(built, "-o", "-")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    page = Page(out.stdout)
    assert set(page.cards) == {"cpu", "fresh", "mem", "broken"}
    assert page.cards["cpu"]["text"]["ph"] == "image missing: '../../etc/passwd.png' is not an image plotboard writes"
    assert page.cards["cpu"]["text"]["head"].startswith("cpu")  # a title that is no text: the name
    assert "wait" not in page.cards["cpu"]["text"]  # waiting_for that is no list: nothing to wait for
    assert problems_with_urls(page) == []
