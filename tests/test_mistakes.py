"""An input file that is not there (a typo, or a producer that has not written it yet) is not
silent: it is named in the log, on the card and in status.json, and the chart renders once it
appears (the card in a browser: tests/test_page.py)."""

from __future__ import annotations

import json
import re

from conftest import Board

WAITING = """
[board]
workers = 1

[defaults]
size = [2, 1]
dpi = 40
hidpi = false

[[charts]]
name = "a"
plot = "plots:line"
inputs = ["data/a.txt"]

[[charts]]
name = "b"
plot = "plots:line"
inputs = ["data/b.txt", "data/more-*.txt"]
"""


def wait_line(page: str, name: str) -> str:
    """The <p class="wait"> element of a chart's card in index.html."""
    card = page[page.index(f'data-name="{name}"'):]
    return re.search(r'<p class="wait"[^>]*>[^<]*</p>', card[:card.index("</article>")]).group(0)


def test_a_missing_input_file_is_reported_in_the_log_on_the_card_and_in_status_json(tmp_path):
    board = Board(tmp_path / "b").write(WAITING)
    board.data("data/b.txt", "1 2 3\n")  # b's pattern matches nothing: that is not reported
    result = board.cli("build")
    assert result.returncode == 0, result.stderr  # not an error: a producer may write it later
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, result.stderr
    assert f"{board.file}: charts[0] (a).inputs: data/a.txt does not exist" in warnings[0]
    # Rendered (empty axes), but waiting: pending, not a green ok, on the page and in `status`.
    assert board.chart("a")["waiting_for"] == ["data/a.txt"] and board.chart("a")["state"] == "pending"
    assert board.chart("a")["renders"] == 1
    assert board.chart("b")["waiting_for"] == [] and board.chart("b")["state"] == "ok"
    page = (board.output / "index.html").read_text()
    assert wait_line(page, "a") == '<p class="wait">waiting for data/a.txt</p>'
    assert wait_line(page, "b") == '<p class="wait" hidden></p>'
    assert re.search(r'<article class="card state-pending" id="chart-a"[^>]*>\s*<div class="head"><h2>a</h2> '
                     r'<span class="badge">pending</span>', page), page
    status = board.cli("status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert status.stdout.startswith("PLOTBOARD WARNING - a pending (waiting for data/a.txt)"), status.stdout
    assert [c["state"] for c in json.loads(board.cli("status", "--json").stdout)["charts"]] == ["pending", "ok"]

    board.data("data/a.txt", "3 1 2\n")  # the producer has written it: the chart renders with it
    result = board.cli("build")
    assert result.returncode == 0 and "WARNING" not in result.stderr, result.stderr
    assert "rendered a" in result.stderr and "rendered b" not in result.stderr
    assert board.chart("a")["waiting_for"] == [] and board.chart("a")["renders"] == 2
    assert board.chart("a")["state"] == "ok"
    assert wait_line((board.output / "index.html").read_text(), "a") == '<p class="wait" hidden></p>'
    assert board.cli("status").returncode == 0


def test_under_run_a_chart_waiting_for_its_file_renders_when_a_producer_creates_it(tmp_path, daemons):
    board = Board(tmp_path / "b").write(WAITING)
    board.data("data/b.txt", "1 2 3\n")
    d = daemons(board)
    assert "charts[0] (a).inputs: data/a.txt does not exist" in d.log
    first = d.wait_state("a", state="pending", waiting_for=["data/a.txt"], renders=1)  # rendered, yet waiting
    board.data("data/a.txt", "3 1 2\n")
    d.wait_state("a", state="ok", waiting_for=[], renders=first["renders"] + 1)
    assert d.stop() == 0
