"""`plotboard status`: each state brought about for real, with its monitoring-plugin exit code."""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import TWO_CHARTS, Board, chart, fast_board, wait_for, write_data
from renderer.pages.status import exit_code, parse_iso, rejudge, summary
from renderer.text import MAX_STATUS_LINE


def judged(board: Board) -> tuple[int, dict]:
    """Exit code and manifest of `status --json`."""
    result = board.cli("status", "--json")
    return result.returncode, json.loads(result.stdout)


def states(manifest: dict) -> dict[str, str]:
    return {c["name"]: c["state"] for c in manifest["charts"]}


def test_fresh_build_is_ok_exit_0(built):
    board = built
    result = board.cli("status")
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("PLOTBOARD OK")
    code, manifest = judged(board)
    assert code == 0 and states(manifest) == {"a": "ok", "b": "ok"}
    assert manifest["board"]["title"] == "Test board"


def test_states_are_judged_at_the_time_given():
    """stale once older than stale_after (not at it), never without one; error and pending
    whatever the time; the exit code and the summary follow."""
    rendered = "2026-01-01T00:00:00.000Z"
    t0 = parse_iso(rendered)

    def manifest(*names: str) -> dict:
        charts = {"a": {"stale_after_s": None}, "b": {"stale_after_s": 60.0},
                  "c": {"stale_after_s": 60.0, "rendered_at": None},
                  "d": {"stale_after_s": 60.0, "error": "ValueError: plot exploded"}}
        return {"charts": [{"name": n, "rendered_at": rendered, "error": None, **charts[n]} for n in names]}

    assert states(rejudge(manifest("a", "b", "c", "d"), t0 + 60)) == {"a": "ok", "b": "ok", "c": "pending", "d": "error"}
    assert states(rejudge(manifest("a", "b", "c", "d"), t0 + 60.001)) == {"a": "ok", "b": "stale", "c": "pending",
                                                                          "d": "error"}
    assert states(rejudge(manifest("a"), t0 + 10 * 365 * 86400)) == {"a": "ok"}
    fresh, old = rejudge(manifest("a", "b"), t0 + 59), rejudge(manifest("a", "b"), t0 + 61)
    assert (exit_code(fresh), summary(fresh, exit_code(fresh), t0 + 59)) == (
        0, "PLOTBOARD OK - 2 charts ok | ok=2;;;0 stale=0;;;0 error=0;;;0 pending=0;;;0 oldest_age=59s;;;0")
    assert (exit_code(old), summary(old, exit_code(old), t0 + 61.9)) == (
        1, "PLOTBOARD WARNING - b stale | ok=1;;;0 stale=1;;;0 error=0;;;0 pending=0;;;0 oldest_age=61s;;;0")


def test_chart_older_than_stale_after_is_stale_exit_1(board):
    board.write(TWO_CHARTS.replace('name = "b"\n', 'name = "b"\nstale_after = "1s"\n'))
    assert board.cli("build").returncode == 0
    rendered_at = parse_iso(board.chart("b")["rendered_at"])
    wait_for(lambda: time.time() - rendered_at > 1.2, timeout=60, what="chart b to pass its stale_after")
    result = board.cli("status")
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("PLOTBOARD WARNING") and "b stale" in result.stdout
    code, manifest = judged(board)
    assert code == 1 and states(manifest) == {"a": "ok", "b": "stale"}
    assert board.chart("b")["state"] == "ok", "status must judge now, not rewrite status.json"


def test_failed_chart_is_error_exit_2(board):
    board.write(TWO_CHARTS.replace('plot = "plots:line"\ninputs = ["data/b.txt"]', 'plot = "plots:boom"'))
    assert board.cli("build").returncode == 1
    result = board.cli("status")
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith("PLOTBOARD CRITICAL")
    assert "b error (ValueError: plot exploded)" in result.stdout
    code, manifest = judged(board)
    assert code == 2 and states(manifest) == {"a": "ok", "b": "error"}
    assert manifest["charts"][1]["error"] == "ValueError: plot exploded"


def test_never_rendered_chart_is_pending_exit_1(built):
    board = built
    board.write(TWO_CHARTS + '\n[[charts]]\nname = "c"\nplot = "plots:line"\n')  # a chart added since
    assert board.cli("build", "--only", "a").returncode == 0
    code, manifest = judged(board)
    assert code == 1 and states(manifest) == {"a": "ok", "b": "ok", "c": "pending"}


def test_missing_status_json_is_unknown_exit_3(board):
    result = board.cli("status")
    assert result.returncode == 3
    assert result.stdout.startswith("PLOTBOARD UNKNOWN") and "status.json" in result.stdout
    assert "Traceback" not in result.stderr


def test_garbage_status_json_is_unknown_exit_3(board):
    board.output.mkdir()
    for garbage in ("{not json", '{"charts": 3}', "[]", "", '{"charts": [1]}', '{"charts": [{"state": "ok"}]}',
                    '{"charts": [{"name": "a", "rendered_at": "yesterday"}]}'):
        (board.output / "status.json").write_text(garbage)
        result = board.cli("status")
        assert result.returncode == 3, (garbage, result.stdout, result.stderr)
        assert result.stdout.startswith("PLOTBOARD UNKNOWN") and "Traceback" not in result.stderr


WRONG_SHAPES = {
    "rendered_at a number": '{"charts": [{"name": "a", "rendered_at": 5}]}',
    "rendered_at a list": '{"charts": [{"name": "a", "rendered_at": ["x"]}]}',
    "error an object": '{"charts": [{"name": "a", "error": {"x": 1}}]}',
    "stale_after_s text": '{"charts": [{"name": "a", "rendered_at": "2026-01-01T00:00:00.000Z", "stale_after_s": "1h"}]}',
    "stale_after_s NaN": '{"charts": [{"name": "a", "rendered_at": "2026-01-01T00:00:00.000Z", "stale_after_s": NaN}]}',
    "name a number": '{"charts": [{"name": 5}]}',
    "deep nesting": '{"charts": [], "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep nesting in a chart": '{"charts": [{"name": "a", "error": ' + "[" * 900 + "]" * 900 + "}]}",
    "not utf-8": b'{"charts": [{"name": "\xff"}]}'.decode("latin-1"),
    "problems text": '{"charts": [], "problems": "socket"}',
    "a problem without a message": '{"charts": [], "problems": [{"what": "socket"}]}',
}


@pytest.mark.parametrize("content", list(WRONG_SHAPES.values()), ids=list(WRONG_SHAPES))
def test_status_json_of_the_wrong_shape_is_unknown_exit_3_in_one_line(board, content):
    board.output.mkdir()
    (board.output / "status.json").write_bytes(content.encode("latin-1"))
    for args in ((), ("--json",)):
        result = board.cli("status", *args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert result.stdout.startswith("PLOTBOARD UNKNOWN - ") and result.stdout.count("\n") == 1, result.stdout
        assert result.stderr == ""


def test_bad_board_file_is_unknown_exit_3(board):
    board.file.write_text("[board\n")
    result = board.cli("status")
    assert result.returncode == 3 and result.stdout.startswith("PLOTBOARD UNKNOWN")


def test_one_chart_is_counted_as_one_chart(tmp_path, daemons):
    board = fast_board(tmp_path / "board", chart("a", inputs="a.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    assert board.cli("build").returncode == 0
    assert board.cli("status").stdout.startswith("PLOTBOARD OK - 1 chart ok | ok=1;;;0 ")
    d = daemons(board)
    assert "run: 1 chart, watching 1 folder (" in d.log
    assert d.stop() == 0


# The monitoring-plugins guidelines' performance data: space-separated
# 'label'=value[UOM];[warn];[crit];[min];[max], the label quoted when it holds spaces, = or ';
# value, min and max in [-0-9.]; warn and crit ranges; UOM one of s, us, ms, %, B, KB, MB, TB, c,
# or none; trailing empty fields may be dropped.
NUMBER = r"-?[0-9.]+"
RANGE = r"@?(?:~|-?[0-9.]+)?:?(?:-?[0-9.]+)?"
PERF = re.compile(rf"(?:'(?:[^']|'')+'|[^' =]+)=({NUMBER})(s|us|ms|%|B|KB|MB|TB|GB|c)?"
                  rf"(?:;({RANGE})?(?:;({RANGE})?(?:;({NUMBER})?(?:;({NUMBER})?)?)?)?)?")


def perfdata(line: str) -> dict[str, tuple[float, str]]:
    """The performance data of a plugin's output line, parsed by the guidelines' grammar:
    label -> (value, UOM). AssertionError for anything that does not follow it."""
    assert line.count("\n") <= 1 and line.count("|") == 1, line
    text, perf = line.rstrip("\n").split("|")
    assert text.endswith(" ") and perf.startswith(" "), line
    found = {}
    for item in perf.strip().split(" "):
        match = PERF.fullmatch(item)
        assert match, f"not performance data by the guidelines: {item!r} in {line!r}"
        label = item.split("=")[0].strip("'")
        assert match.group(5) == "0", f"{label}: min 0 expected"
        found[label] = (float(match.group(1)), match.group(2) or "")
    return found


def test_status_ends_with_performance_data_by_the_guidelines(board):
    board.write(TWO_CHARTS.replace('name = "b"\n', 'name = "b"\nstale_after = "1s"\n')
                + '\n[[charts]]\nname = "c"\nplot = "plots:boom"\n'
                + '\n[[charts]]\nname = "w"\nplot = "plots:line"\ninputs = ["data/a.txt"]\nwindows = ["1d", "7d"]\n')
    assert board.cli("build").returncode == 1
    first = min(parse_iso(c["rendered_at"]) for c in board.status()["charts"] if c["rendered_at"])
    wait_for(lambda: time.time() - first > 2.5, timeout=60, what="b to turn stale and the oldest image to age")
    result = board.cli("status")
    assert result.returncode == 2, result.stdout
    perf = perfdata(result.stdout)
    assert {k: v for k, v in perf.items() if k != "oldest_age"} == {
        "ok": (2, ""), "stale": (1, ""), "error": (1, ""), "pending": (0, "")}
    age, unit = perf["oldest_age"]
    assert unit == "s" and 2 <= age <= time.time() - first + 1


def test_performance_data_stays_whole_whatever_the_errors_hold(board):
    """The one-line cut shortens the text, never the performance data; a `|` in an error
    cannot start it early; nothing rendered yet: no age."""
    board.output.mkdir()
    charts = [{"name": f"c{i}", "error": f"E{i}: a|b\n" + "y" * 10_000, "rendered_at": None} for i in range(50)]
    (board.output / "status.json").write_text(json.dumps({"charts": charts}))
    result = board.cli("status")
    assert result.returncode == 2
    assert len(result.stdout) <= MAX_STATUS_LINE + 1, len(result.stdout)
    assert perfdata(result.stdout) == {"ok": (0, ""), "stale": (0, ""), "error": (50, ""), "pending": (0, "")}
    assert "E0: a/b" in result.stdout
