"""Families (`foreach`) and time windows (`windows`): the board file's side (issue 14)."""

from __future__ import annotations

import json
import os
import re

import pytest

from conftest import Board, chart, fast_board, wait_for

FAMILY = chart("disk-{match}", inputs="{path}", extra='foreach = "data/disk-*.csv"\ntitle = "Disk {match}"\n'
               'params = { label = "{stem}" }\nwindows = ["1d", "7d"]')


def family_board(root, *extra: str, family: str = FAMILY) -> Board:
    b = fast_board(root, family, *extra)
    for disk in ("sda1", "SDB 2"):
        b.data(f"data/disk-{disk}.csv", "1 2 3\n")
    return b


def test_a_family_expands_into_one_chart_per_file_with_its_windows(tmp_path):
    from renderer.board.config import load_board

    b = family_board(tmp_path / "b")
    board = load_board(b.file)
    assert [c.name for c in board.shown] == ["disk-sdb-2", "disk-sda1"]
    sdb = board.chart("disk-sdb-2")
    assert sdb.title == "Disk SDB 2" and sdb.params == {"label": "disk-SDB 2"} and sdb.family == "disk-{match}"
    assert sdb.inputs == (str(b.root / "data/disk-SDB 2.csv"),)
    assert [(c.name, c.window.name, c.window.interval) for c in board.windows_of("disk-sda1")] == [
        ("disk-sda1", "1d", 300.0), ("disk-sda1.7d", "7d", 2100.0)]
    assert board.chart("disk-sda1").files() == ["disk-sda1.png", "disk-sda1.1d.png"]
    assert board.chart("disk-sda1.7d").files() == ["disk-sda1.7d.png"]
    assert [(f.name, f.members) for f in board.families] == [("disk-{match}", ("disk-sdb-2", "disk-sda1"))]


def test_the_table_form_gives_each_window_its_interval(tmp_path):
    from renderer.board.config import load_board

    b = fast_board(tmp_path / "b", chart("cpu", inputs="data/cpu.txt", extra='windows = { "1d" = "1m", "7d" = "30m" }'))
    assert [(c.window.name, c.window.interval) for c in load_board(b.file).windows_of("cpu")] == [
        ("1d", 60.0), ("7d", 1800.0)]


BAD = {
    "no placeholder in name": (FAMILY.replace('name = "disk-{match}"', 'name = "disk"'),
                               "charts[0] (disk).name: a family (foreach) needs a placeholder"),
    "unknown placeholder": (FAMILY.replace("Disk {match}", "Disk {host}"),
                            "charts[0] (disk-{match}).title: unknown placeholder {host}"),
    "unknown placeholder in params": (FAMILY.replace('"{stem}"', '"{file}"'),
                                      "charts[0] (disk-{match}).params.label: unknown placeholder {file}"),
    "window not a duration": (FAMILY.replace('"7d"', '"a week"'),
                              "charts[0] (disk-{match}).windows: expected a window like"),
    "duplicate windows": (FAMILY.replace('"7d"', '"24h"'),
                          "charts[0] (disk-{match}).windows: duplicate window '24h' (the same as '1d')"),
    "bad interval": (FAMILY.replace('["1d", "7d"]', '{ "1d" = "1m", "7d" = "often" }'),
                     "charts[0] (disk-{match}).windows: window '7d': interval: expected a duration"),
    "interval longer than window": (FAMILY.replace('["1d", "7d"]', '{ "1d" = "2d" }'),
                                    "charts[0] (disk-{match}).windows: window '1d': interval '2d' is longer"),
    "no windows": (FAMILY.replace('["1d", "7d"]', '[]'), "charts[0] (disk-{match}).windows: expected at least one"),
    "foreach not a string": (FAMILY.replace('"data/disk-*.csv"', '["data/disk-*.csv"]'),
                             "charts[0] (disk-{match}).foreach: expected a glob pattern string"),
    "name too long before any file's text": (FAMILY.replace('name = "disk-{match}"', f'name = "{"d" * 235}-{{match}}"'),
                                             f"charts[0] ({'d' * 235}-{{match}}).name: too long: 236 characters make "
                                             "files like .NAME.1d@2x.png.abcdef01.tmp 260 bytes long, over the 255 "
                                             "bytes a file name may have; make it at most 231 characters with window "
                                             "'1d' (without its placeholders)"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_family_or_windows_is_exit_2_naming_file_chart_and_key_and_nothing_written(tmp_path, case):
    toml, message = BAD[case]
    b = family_board(tmp_path / "b", family=toml)
    b.data("data/x/disk-a.csv", "1\n")
    b.data("data/y/disk-a.csv", "1\n")
    result = b.cli("build")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{b.file}: {message}" in lines[0], result.stderr
    assert not b.output.exists() and not (b.root / ".plotboard").exists()


WINDOW_PLOTS = '''
import os

def seen(fig, inputs, window=None, window_name=None, **params):
    with open(os.path.join(os.path.dirname(__file__), "seen.txt"), "a") as f:
        f.write(f"{window_name} {window}\\n")
    ax = fig.add_subplot()
    ax.plot([1, 2, 3][: 2 if window_name == "7d" else 3])

def week_fails(fig, inputs, window=None, window_name=None, **params):
    if window_name == "7d":
        raise ValueError("no week")
    fig.add_subplot().plot([1, 2])

def ignores(fig, inputs, **params):
    fig.add_subplot().plot([1, 2])
'''


def test_build_renders_each_window_with_window_and_window_name_and_keeps_name_png_equal_to_the_first(tmp_path):
    b = fast_board(tmp_path / "b", chart("cpu", "plots:seen", "data/cpu.txt", 'windows = ["1d", "7d"]'),
                   plots=WINDOW_PLOTS)
    b.data("data/cpu.txt", "1\n")
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    assert sorted((b.root / "seen.txt").read_text().splitlines()) == ["1d 86400.0", "7d 604800.0"]
    out = b.output
    assert (out / "cpu.png").read_bytes() == (out / "cpu.1d.png").read_bytes() != (out / "cpu.7d.png").read_bytes()
    entry = b.chart("cpu")
    assert [(w["name"], w["image"], w["state"]) for w in entry["windows"]] == [
        ("1d", "cpu.1d.png", "ok"), ("7d", "cpu.7d.png", "ok")]
    assert entry["hash"] == entry["windows"][0]["hash"] and entry["image"] == "cpu.png" and "warning" not in entry
    assert [c["name"] for c in b.status()["charts"]] == ["cpu"]
    status = b.cli("status")
    assert status.returncode == 0, status.stdout
    # A change re-renders the first window; the 7d one waits out its 35 minutes.
    (b.root / "data/cpu.txt").write_text("2\n")
    again = b.cli("build")
    assert "rendered cpu " in again.stderr and "cpu.7d" not in again.stderr, again.stderr
    assert b.cli("build", "--force", "--only", "cpu").stderr.count("rendered cpu") == 2


def test_build_re_renders_every_window_of_every_member_when_the_family_definition_changes(tmp_path):
    b = family_board(tmp_path / "b")
    assert b.cli("build").returncode == 0
    renders = {c["name"]: [w["rendered_at"] for w in c["windows"]] for c in b.status()["charts"]}
    (b.root / "data/disk-sda1.csv").write_text("3 2 1\n")  # data: only the first window of that member
    data = b.cli("build")
    assert data.stderr.count("rendered ") == 1 and "rendered disk-sda1 " in data.stderr, data.stderr
    b.file.write_text(b.file.read_text().replace('label = "{stem}"', 'label = "disk {stem}"'))
    redefined = b.cli("build")  # the definition: every window of every member, inside the 35 minutes too
    assert redefined.returncode == 0, redefined.stderr
    assert sorted(re.findall(r" rendered (\S+) trigger=redefined", redefined.stderr)) == [
        "disk-sda1", "disk-sda1.7d", "disk-sdb-2", "disk-sdb-2.7d"], redefined.stderr
    after = {c["name"]: [w["rendered_at"] for w in c["windows"]] for c in b.status()["charts"]}
    assert all(a[1] != r[1] for a, r in zip(after.values(), renders.values()))


def test_a_fingerprint_tells_a_new_definition_from_new_data():
    from renderer.store.fingerprints import redefined

    assert not redefined("d1-i1.m1", "d1-i2.m1")
    assert redefined("d1-i1.m1", "d2-i1.m1") and redefined("d1-i1.m1", "d1-i1.m2") and redefined(None, "d1-i1.m1")


def test_window_intervals_are_at_least_100ms(tmp_path):
    from renderer.board.options import CHART

    assert CHART["windows"].check(["10s"], None)[0].interval == 0.1  # 10 s ÷ 288 would be 35 ms
    with pytest.raises(ValueError, match="window '1d': interval: expected at least 100ms, got '50ms'"):
        CHART["windows"].check({"1d": "50ms"}, None)


def test_a_chart_is_in_the_worst_state_of_its_windows(tmp_path):
    b = fast_board(tmp_path / "b", chart("cpu", "plots:week_fails", extra='windows = ["1d", "7d"]'), plots=WINDOW_PLOTS)
    assert b.cli("build").returncode == 1
    entry = b.chart("cpu")
    assert entry["state"] == "error" and entry["error"] == "7d: ValueError: no week"
    assert [w["state"] for w in entry["windows"]] == ["ok", "error"]
    assert b.cli("status").returncode == 2


def test_a_plot_that_ignores_window_is_reported_once_in_the_log_and_on_the_card(tmp_path):
    b = fast_board(tmp_path / "b", chart("cpu", "plots:ignores", "data/cpu.txt", 'windows = ["1h", "1d", "7d"]'),
                   plots=WINDOW_PLOTS)
    b.data("data/cpu.txt", "1\n")
    first = b.cli("build")
    assert first.stderr.count("cpu: the plot ignores `window`") == 1, first.stderr
    assert "ignores `window`" in b.chart("cpu")["warning"]
    assert "ignores `window`" in (b.output / "index.html").read_text()
    assert "ignores" not in b.cli("build", "--force").stderr


def test_later_windows_wait_out_their_interval_in_build():
    from renderer.board.model import Chart
    from renderer.board.families import windowed
    from renderer.board.options import CHART
    from renderer.store.records import ChartRecord
    from renderer.store.fingerprints import out_of_date

    base = Chart(name="cpu", title="", description="", plot="p:f", plot_file=None, inputs=(), every=60.0, cron=None,
                 stale_after=None, params={}, windows=CHART["windows"].check(["1d", "7d"], None))
    first, week = windowed(base)
    rec = ChartRecord(fingerprint="d-old.m", rendered_at=1000.0)
    assert out_of_date(first, rec, "d-new.m", 1001.0) == "changed"
    assert out_of_date(week, rec, "d-new.m", 1000.0 + 2099) is None
    assert out_of_date(week, rec, "d-new.m", 1000.0 + 2100) == "changed"
    assert out_of_date(week, rec, "d-old.m", 1000.0 + 61) is None  # its schedule came, its interval did not
    assert out_of_date(week, rec, "d-old.m", 1000.0 + 2100) == "schedule"
    assert out_of_date(week, rec, "d-new.m", 1001.0, limit=False) == "changed"  # a reload: settings changed
    assert out_of_date(week, rec, "d2-old.m", 1001.0) == "redefined"  # a new definition is never held


def test_while_a_file_is_rewritten_every_100ms_the_7d_window_renders_at_most_once_per_35_minutes():
    """The daemon's scheduler and limiter (renderer.board.windows.held_until, as renderer.daemon.loop uses
    it) against a made-up clock: two hours of a file rewritten every 100 ms."""
    from fakeclock import Clock
    from renderer.board.model import Chart
    from renderer.board.families import windowed
    from renderer.board.options import CHART
    from renderer.daemon.schedule import Scheduler
    from renderer.store.records import ChartRecord
    from renderer.board.windows import held_until

    base = Chart(name="cpu", title="", description="", plot="p:f", plot_file=None, inputs=(), every=None, cron=None,
                 stale_after=None, params={}, windows=CHART["windows"].check(["1d", "7d"], None))
    charts = {c.name: c for c in windowed(base)}
    clock = Clock()
    scheduler = Scheduler(clock)
    records = {name: ChartRecord() for name in charts}
    for name in charts:
        scheduler.add(name)
    starts: dict[str, list[float]] = {name: [] for name in charts}
    start = clock()
    while clock() - start < 2 * 3600:
        for name in charts:
            scheduler.change(name)
        for name in scheduler.ready():
            timer = scheduler[name]
            timer.start(clock())
            starts[name].append(clock())
            records[name].rendered_at = clock()  # a render that takes no time
            timer.finish(clock(), True, 0, None)
            timer.hold_until = held_until(charts[name], records[name].rendered_at)
        clock.advance(0.1)
    week = starts["cpu.7d"]
    assert 3 <= len(week) <= 4, week  # 2 h ÷ 35 min, plus the first render
    assert all(b - a >= 35 * 60 for a, b in zip(week, week[1:]))
    assert len(starts["cpu"]) >= 2 * 3600 / 1.5  # the first window follows the changes (about once a second)


def test_under_run_a_new_file_adds_its_chart_and_a_deleted_one_removes_chart_and_images(tmp_path, daemons):
    from conftest import wait_for

    b = fast_board(tmp_path / "b", FAMILY, chart("empty-{stem}", inputs="{path}", extra='foreach = "none/*.txt"'))
    b.data("data/disk-sda.csv", "1 2 3\n")
    d = daemons(b)
    d.wait_state("disk-sda", state="ok")
    assert d.state("disk-sda")["family"] == "disk-{match}"
    status = json.loads((b.output / "status.json").read_text())
    assert {"name": "empty-{stem}", "foreach": "none/*.txt", "members": 0, "group": None} in status["families"]
    assert "no file matches none/*.txt" in (b.output / "index.html").read_text()
    # A first render of the new member's windows takes a worker's time: the chart appears at once.
    b.data("data/disk-sdb.csv", "3 2 1\n")
    wait_for(lambda: d.state("disk-sdb"), 60, "the new file's chart in status.json")
    d.wait_state("disk-sdb", state="ok")
    assert {w["name"] for w in d.state("disk-sdb")["windows"]} == {"1d", "7d"}
    assert (b.output / "disk-sdb.7d.png").is_file() and (b.output / "disk-sdb.1d.png").is_file()
    # A change to one member's file re-renders that member only.
    before = d.state("disk-sda")["renders"], d.state("disk-sdb")["renders"]
    b.data("data/disk-sdb.csv", "5 5 1\n")
    wait_for(lambda: d.state("disk-sdb").get("renders", 0) > before[1], 60, "disk-sdb to render again")
    assert d.state("disk-sda")["renders"] == before[0]
    (b.root / "data/disk-sdb.csv").unlink()
    gone = lambda: not d.state("disk-sdb") and not list(b.output.glob("disk-sdb*"))  # noqa: E731
    wait_for(gone, 60, "the deleted file's chart and images to go")
    assert d.state("disk-sda")["state"] == "ok"
    d.alive()


def test_the_helpers_slice_rows_and_a_csv_to_the_last_window(tmp_path):
    from renderer.helpers import last, read_csv

    rows = [(t, t * 2) for t in range(0, 1000, 100)]
    assert last(rows, 250) == [(700, 1400), (800, 1600), (900, 1800)]
    assert last(rows, 250, now=500) == [(300, 600), (400, 800), (500, 1000), (600, 1200), (700, 1400),
                                        (800, 1600), (900, 1800)]
    assert last(rows, None) == rows and last([], 60) == []
    path = tmp_path / "disk.csv"
    path.write_text("time,used\n2026-11-20T00:00:00Z,1\n2026-11-21T00:00:00Z,2\n2026-11-21T12:00:00Z,x\n")
    assert [r["used"] for r in last(read_csv(path), 86400, "time")] == [2.0, "x"]
    assert [r["used"] for r in last(read_csv(path), 86400)] == [2.0, "x"]  # as the README writes it: "time" by default


# -- hostile file names: every one of them leaves the rest of the board as it was ----------------

# A plot that needs its inputs and notes, per member (its `label` param), the files it was handed.
SEEN_PLOTS = '''
import json, os

def seen(fig, inputs, label="", **params):
    if not inputs:
        raise ValueError("no inputs")
    with open(os.path.join(os.path.dirname(__file__), "seen.jsonl"), "a") as f:
        f.write(json.dumps({"label": label, "inputs": [p.name for p in inputs]}) + "\\n")
    fig.add_subplot().plot([1, 2, 3])

def still(fig, inputs, **params):
    fig.add_subplot().plot([1, 2])
'''
SEEN_FAMILY = chart("disk-{match}", "plots:seen", "{path}",
                    'foreach = "data/disk-*.csv"\ntitle = "Disk {match}"\nparams = { label = "{match}" }')
NOT_UTF8 = b"disk-\xff\xfe.csv"


def seen_inputs(b) -> dict[str, list[str]]:
    """label -> the input files (names) its member's plot was handed."""
    lines = (b.root / "seen.jsonl").read_text().splitlines()
    return {row["label"]: row["inputs"] for row in map(json.loads, lines)}


def not_utf8_file(b) -> None:
    with open(os.fsencode(b.root / "data") + b"/" + NOT_UTF8, "wb") as f:
        f.write(b"1 2 3\n")


def failed_entries(charts: list[dict]) -> list[dict]:
    """status.json's entries of family members left out: in error, never rendered."""
    return [c for c in charts if c.get("family") and c["state"] == "error" and c["rendered_at"] is None]


def test_a_file_name_that_is_not_utf8_gets_a_safe_name_and_title_and_its_plot_gets_the_file(tmp_path):
    b = fast_board(tmp_path / "b", SEEN_FAMILY, plots=SEEN_PLOTS)
    b.data("data/disk-sda.csv", "1\n")
    not_utf8_file(b)
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    entry = b.chart("disk--")
    assert entry["state"] == "ok" and entry["title"] == "Disk \ufffd\ufffd", entry
    assert b.chart("disk-sda")["state"] == "ok"
    assert "Disk \ufffd\ufffd" in (b.output / "index.html").read_text(encoding="utf-8")
    assert seen_inputs(b)["\ufffd\ufffd"] == [os.fsdecode(NOT_UTF8)]  # the file itself, by its own name
    assert b.cli("status").returncode == 0


def test_under_run_a_file_name_that_is_not_utf8_adds_its_member_and_the_daemon_carries_on(tmp_path, daemons):
    b = fast_board(tmp_path / "b", SEEN_FAMILY, plots=SEEN_PLOTS)
    b.data("data/disk-sda.csv", "1\n")
    d = daemons(b)
    d.wait_state("disk-sda", state="ok")
    not_utf8_file(b)
    d.wait_state("disk--", state="ok", title="Disk \ufffd\ufffd")
    b.data("data/disk-sdb.csv", "2\n")  # and it goes on following the family
    d.wait_state("disk-sdb", state="ok")
    status = b.cli("status")
    assert status.returncode == 0, status.stdout
    d.alive()


LOOP_FAMILY = chart("d-{stem}", "plots:seen", "{path}", 'foreach = "data/**/disk-*.csv"\nparams = { label = "{stem}" }')


def loops(b) -> None:
    os.symlink(".", b.root / "data" / "l1")  # glob.glob never finished with these two
    os.symlink(".", b.root / "data" / "l2")


def test_a_family_expands_like_inputs_each_real_file_once_through_symlink_loops(tmp_path):
    b = fast_board(tmp_path / "b", LOOP_FAMILY, plots=SEEN_PLOTS)
    b.data("data/disk-a.csv", "1\n")
    b.data("data/sub/disk-b.csv", "2\n")
    loops(b)
    result = b.cli("build", timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted((c["name"], c["state"]) for c in b.status()["charts"]) == [("d-disk-a", "ok"), ("d-disk-b", "ok")]
    assert seen_inputs(b) == {"disk-a": ["disk-a.csv"], "disk-b": ["disk-b.csv"]}


def test_under_run_symlink_loops_in_a_family_folder_do_not_hang_the_daemon(tmp_path, daemons):
    b = fast_board(tmp_path / "b", LOOP_FAMILY, plots=SEEN_PLOTS)
    b.data("data/disk-a.csv", "1\n")
    d = daemons(b)
    d.wait_state("d-disk-a", state="ok")
    loops(b)
    b.data("data/sub/disk-c.csv", "3\n")
    d.wait_state("d-disk-c", state="ok")
    assert {c["name"] for c in d.charts()} == {"d-disk-a", "d-disk-c"}
    d.alive()


def test_a_family_past_the_limits_fails_alone_as_one_entry(tmp_path, monkeypatch):
    from renderer.board import inputs
    from renderer.board.config import load_board
    from renderer.board.families import members_changed

    monkeypatch.setattr(inputs, "MAX_INPUTS", 3)
    b = fast_board(tmp_path / "b", chart("cpu", "plots:still"), LOOP_FAMILY, plots=SEEN_PLOTS)
    for n in range(5):
        b.data(f"data/disk-{n}.csv", "1\n")
    board = load_board(b.file)
    assert [c.name for c in board.charts] == ["cpu"]
    (failed,) = board.failed
    assert failed.name == "d" and failed.error.startswith("TooManyInputs: foreach 'data/**/disk-*.csv' match more "
                                                          "than 3 files, the limit per family"), failed
    assert board.families[0].problem and not members_changed(board)


def test_foreach_never_matches_plotboards_own_files_and_a_build_after_a_build_is_the_same(tmp_path):
    b = fast_board(tmp_path / "b", chart("f-{path}", "plots:still", "{path}", 'foreach = "**/*"'), plots=SEEN_PLOTS)
    b.file.write_text(b.file.read_text().replace("[board]\n", '[board]\nstate = "bookkeeping"\n'))
    b.data("data/a.csv", "1\n")
    assert b.cli("build").returncode == 0
    for _ in range(2):  # the output folder and the state folder are full by now
        again = b.cli("build")
        assert again.returncode == 0, again.stderr
    names = {c["name"] for c in b.status()["charts"]}
    assert {"f-data-a-csv", "f-plotboard-toml", "f-plots-py"} <= names
    assert not [n for n in names if n.startswith(("f-public-", "f-bookkeeping-"))], names
    assert all(c["state"] == "ok" for c in b.status()["charts"])


CLASH = FAMILY + chart("disk-total", inputs="data/total.txt")  # the chart after the family: it wins all the same


def test_a_member_whose_name_a_chart_has_is_left_out_alone_as_a_failed_entry_naming_file_and_chart(tmp_path):
    b = family_board(tmp_path / "b", family=CLASH)
    b.data("data/total.txt", "1 2\n")
    b.data("data/disk-total.csv", "")
    result = b.cli("build")
    assert result.returncode == 1, result.stderr  # a chart in error, not a board-file error
    charts = b.status()["charts"]
    assert {c["name"]: c["state"] for c in charts if c not in failed_entries(charts)} == {
        "disk-sdb-2": "ok", "disk-sda1": "ok", "disk-total": "ok"}
    (entry,) = failed_entries(charts)
    assert entry["family"] == "disk-{match}" and entry["name"].startswith("disk-total-")
    assert entry["error"] == ("NameClash: data/disk-total.csv gives the name 'disk-total', which charts[1] "
                              "(disk-total) has"), entry
    assert "NameClash: data/disk-total.csv gives the name" in (b.output / "index.html").read_text()
    assert "shown as a chart in error: NameClash" in result.stderr
    status = b.cli("status")
    assert status.returncode == 2 and "NameClash" in status.stdout, status.stdout
    assert b.cli("build").returncode == 1  # and so it stays while the file is there


def test_two_files_giving_one_name_are_left_out_together_as_one_failed_entry_naming_both(tmp_path):
    b = family_board(tmp_path / "b")
    b.data("data/disk-é.csv", "1\n")
    b.data("data/disk-è.csv", "2\n")
    result = b.cli("build")
    assert result.returncode == 1, result.stderr
    charts = b.status()["charts"]
    (entry,) = failed_entries(charts)
    assert entry["name"] == "disk--" and entry["error"] == (
        "NameClash: data/disk-è.csv and data/disk-é.csv both give the name 'disk--'; neither is shown")
    assert {c["name"] for c in charts} == {"disk-sdb-2", "disk-sda1", "disk--"}
    assert [(f["name"], f["members"], f["failed"]) for f in b.status()["families"]] == [("disk-{match}", 2, 1)]
    assert not list(b.output.glob("disk--*"))


def test_under_run_a_clashing_file_leaves_out_its_member_and_later_files_still_add_theirs(tmp_path, daemons):
    b = fast_board(tmp_path / "b", CLASH)
    b.data("data/total.txt", "1 2\n")
    b.data("data/disk-sda.csv", "1 2 3\n")
    d = daemons(b)
    d.wait_state("disk-sda", state="ok")
    d.wait_state("disk-total", state="ok")
    b.data("data/disk-total.csv", "")
    wait_for(lambda: failed_entries(d.charts()), 60, "the clashing file's failed entry")
    b.data("data/disk-sdb.csv", "3 2 1\n")
    d.wait_state("disk-sdb", state="ok")
    assert d.state("disk-total")["state"] == "ok" and d.state("disk-sda")["state"] == "ok"
    d.wait_log("disk-total.csv gives the name 'disk-total'")
    d.alive()


def test_a_path_put_into_inputs_is_that_file_not_a_pattern(tmp_path):
    b = fast_board(tmp_path / "b", SEEN_FAMILY, plots=SEEN_PLOTS)
    for name in ("x", "[x]", "*", "y"):
        b.data(f"data/disk-{name}.csv", "1\n")
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    assert seen_inputs(b) == {"x": ["disk-x.csv"], "[x]": ["disk-[x].csv"], "*": ["disk-*.csv"], "y": ["disk-y.csv"]}


def test_a_member_whose_name_is_too_long_for_its_files_fails_alone(tmp_path):
    b = family_board(tmp_path / "b")
    long = "x" * 240  # the file's name fits (248 bytes); disk-xxx….7d@2x.png's temporary file would not
    b.data(f"data/disk-{long}.csv", "1\n")
    result = b.cli("build")
    assert result.returncode == 1, result.stderr
    charts = b.status()["charts"]
    (entry,) = failed_entries(charts)
    assert entry["error"] == (f"NameTooLong: data/disk-{long}.csv gives a name that is too long: 245 characters "
                              "make files like .NAME.1d@2x.png.abcdef01.tmp 269 bytes long, over the 255 bytes a file "
                              "name may have; make it at most 231 characters with window '1d'"), entry["error"]
    assert len(entry["name"]) <= 234 and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", entry["name"])
    assert {c["name"]: c["state"] for c in charts if c is not entry} == {"disk-sdb-2": "ok", "disk-sda1": "ok"}


@pytest.mark.parametrize("root, pattern, expected", [
    ("b", "data/*/*.csv", ["data/x/a.csv", "data/y/b.csv"]),
    ("b", "data/../data/**/*.csv", ["data/x/a.csv", "data/y/b.csv"]),
    ("b/data", "../data/x/*.csv", ["x/a.csv"]),
    ("b/data", "../../other/*.csv", ["../../other/c.csv"]),
    ("b", "*/x/a.csv", ["data/x/a.csv"])])
def test_a_family_s_matches_are_named_relative_to_the_board_s_folder(tmp_path, root, pattern, expected):
    """matches() names each file relative to the board's folder, below the folder and outside it
    (a pattern may climb out with ..), as os.path.relpath does."""
    from renderer.board.families import matches

    for path in ("b/data/x/a.csv", "b/data/y/b.csv", "other/c.csv"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("1\n")
    assert matches(tmp_path / root, pattern) == expected
