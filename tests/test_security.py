"""Hostile names, titles and planted symlinks do no harm."""

from __future__ import annotations

import os
import re
import shutil

from markupsafe import escape

from conftest import TWO_CHARTS

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'


def test_dot_dot_chart_name_is_rejected_before_writing(board):
    board.write(TWO_CHARTS.replace('name = "b"', 'name = "../x"'))
    result = board.cli("build")
    assert result.returncode == 2
    assert "'../x'" in result.stderr and ".name" in result.stderr
    assert not board.output.exists()
    assert sorted(p.name for p in board.root.iterdir()) == ["data", "plotboard.toml", "plots.py"]


def test_script_in_titles_and_description_is_escaped_on_the_page(built):
    board = built
    toml = board.file.read_text()
    toml = toml.replace('title = "Test board"', f"title = '{SCRIPT}'")
    toml = toml.replace('title = "Chart A"', f"title = '{SCRIPT}'\ndescription = '{ATTR}'")
    toml = toml.replace('title = "Chart B"', f"title = '{ATTR}'")
    board.write(toml)
    assert board.cli("build").returncode == 0
    page = (board.output / "index.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count(str(escape(SCRIPT))) >= 4  # <title>, <h1>, the card's <h2> and alt
    assert str(escape(ATTR)) in page
    for img in re.findall(r"<img [^>]*>", page):
        assert "onerror" not in img.split('alt="')[0], img
    assert board.chart("a")["title"] == SCRIPT  # the manifest keeps the text as it is


def test_symlink_planted_at_an_image_is_replaced_not_followed(built, tmp_path):
    board = built
    png = (board.output / "a.png").read_bytes()
    secret = tmp_path / "secret.txt"
    secret.write_text("do not overwrite")
    before = os.stat(secret)
    (board.output / "a.png").unlink()
    (board.output / "a.png").symlink_to(secret)
    assert board.cli("build", "--force").returncode == 0
    assert not (board.output / "a.png").is_symlink()
    assert (board.output / "a.png").read_bytes() == png
    assert secret.read_text() == "do not overwrite"
    assert os.stat(secret).st_mtime_ns == before.st_mtime_ns


def test_symlink_to_identical_bytes_is_still_replaced(built, tmp_path):
    board = built
    twin = tmp_path / "twin.png"
    shutil.copy2(board.output / "a.png", twin)
    before = os.stat(twin)
    (board.output / "a.png").unlink()
    (board.output / "a.png").symlink_to(twin)
    assert board.cli("build", "--force").returncode == 0
    assert not (board.output / "a.png").is_symlink()
    assert os.stat(twin).st_mtime_ns == before.st_mtime_ns


def test_symlink_planted_at_static_is_replaced_not_followed(built, tmp_path):
    board = built
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    theirs = elsewhere / ".board.css.12345678.tmp"  # looks like plotboard's temp name, is not
    theirs.write_text("keep")
    shutil.rmtree(board.output / "static")
    (board.output / "static").symlink_to(elsewhere, target_is_directory=True)
    assert board.cli("build", "--force").returncode == 0
    assert list(elsewhere.iterdir()) == [theirs]
    static = board.output / "static"
    assert static.is_dir() and not static.is_symlink() and any(static.iterdir())
