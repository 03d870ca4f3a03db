"""A plot's error text is cut to a documented length everywhere it goes (state.json, status.json,
index.html, the log, `plotboard status`), and `plotboard status` prints one line whatever it holds."""

from __future__ import annotations

import json
import re

from conftest import TWO_CHARTS, Board, PLOTS
from renderer.text import MAX_ERROR, MAX_STATUS_LINE, MAX_TRACEBACK

HUGE = PLOTS + '''
def huge(fig, inputs, **params):
    raise ValueError("first line\\nsecond line\\r\\n\\x1b[31mred\\u2028" + "x" * 2_000_000)
'''


def test_a_two_megabyte_error_is_cut_everywhere(board):
    board.write(TWO_CHARTS.replace('plot = "plots:line"\ninputs = ["data/b.txt"]', 'plot = "plots:huge"'), HUGE)
    result = board.cli("build", "-v")
    assert result.returncode == 1, result.stderr
    assert len(result.stderr) < MAX_ERROR + MAX_TRACEBACK + 2000, "the log holds the whole message"

    recorded = json.loads((board.root / ".plotboard" / "state.json").read_text())["charts"]["b"]["error"]
    shown = board.chart("b")["error"]
    assert recorded == shown and len(shown) == MAX_ERROR
    assert shown.startswith("ValueError: first line\nsecond line") and shown.endswith("characters in all]")
    assert (board.output / "status.json").stat().st_size < 2 * MAX_ERROR + 2000
    index = (board.output / "index.html").read_text()
    assert len(index) < 20_000 and "characters in all]" in index

    status = board.cli("status")
    assert status.returncode == 2
    line = status.stdout
    assert line.count("\n") == 1 and len(line) <= MAX_STATUS_LINE + 1, line
    assert line.startswith("PLOTBOARD CRITICAL - b error (ValueError: first line second line [31mred xxx")
    assert "\x1b" not in line and "\u2028" not in line and "\r" not in line


RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
BROKEN = PLOTS + '''
def broken(fig, inputs, **params):
    raise ValueError("first line\\nsecond line\\r\\nthird\\u2028fourth")
'''


def test_an_error_text_with_line_breaks_is_logged_on_one_line(board):
    """Each log record is one line (the traceback logged with -v aside), so a log reader never
    takes the rest of a message for records of their own."""
    board.write(TWO_CHARTS.replace('plot = "plots:line"\ninputs = ["data/b.txt"]', 'plot = "plots:broken"'), BROKEN)
    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(RECORD.match(line) for line in lines), result.stderr
    failed = [line for line in lines if "ERROR failed b" in line]
    assert len(failed) == 1 and failed[0].endswith("ValueError: first line second line third fourth"), result.stderr

    result = board.cli("build", "--force", "-v")
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} )", result.stderr.rstrip("\n"))
    spanning = [r for r in records if "\n" in r]
    assert all(RECORD.match(r) and " DEBUG Traceback (most recent call last):" in r for r in spanning), result.stderr
    assert any(r.endswith("ERROR failed b") or "ERROR failed b" in r and "\n" not in r for r in records)
    assert board.chart("b")["error"] == "ValueError: first line\nsecond line\r\nthird\u2028fourth"


def test_status_prints_one_bounded_line_whatever_status_json_holds(board: Board):
    board.output.mkdir()
    charts = [{"name": f"c{i}", "error": f"E{i}: a\nb\rc\n" + "y" * 100_000, "rendered_at": None} for i in range(50)]
    charts.append({"name": "bad\nname", "rendered_at": None})
    (board.output / "status.json").write_text(json.dumps({"charts": charts}))
    result = board.cli("status")
    assert result.returncode == 2
    assert result.stdout.count("\n") == 1 and len(result.stdout) <= MAX_STATUS_LINE + 1, result.stdout[:300]
    assert result.stdout.startswith("PLOTBOARD CRITICAL - c0 error (E0: a b c yyy")
