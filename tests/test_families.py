"""Families (`foreach`) and time windows (`windows`): the board file's side (issue 14)."""

from __future__ import annotations

import pytest

from conftest import Board, chart, fast_board

FAMILY = chart("disk-{match}", inputs="{path}", extra='foreach = "data/disk-*.csv"\ntitle = "Disk {match}"\n'
               'params = { label = "{stem}" }\nwindows = ["1d", "7d"]')


def family_board(root, *extra: str, family: str = FAMILY) -> Board:
    b = fast_board(root, family, *extra)
    for disk in ("sda1", "SDB 2"):
        b.data(f"data/disk-{disk}.csv", "1 2 3\n")
    return b


def test_a_family_expands_into_one_chart_per_file_with_its_windows(tmp_path):
    from renderer.config import load_board

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
    from renderer.config import load_board

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
    "two files give one name": (FAMILY.replace("disk-{match}", "disk-{match}", 1).replace(
        'foreach = "data/disk-*.csv"', 'foreach = "data/*/disk-*.csv"').replace("disk-{match}", "disk-{stem}", 1),
        "charts[0] (disk-{stem}).name: data/x/disk-a.csv and data/y/disk-a.csv both give the name 'disk-disk-a'"),
    "member collides with a chart": (FAMILY + chart("disk-sda1", inputs="data/x.txt"),
                                     "charts[1] (disk-sda1).name: duplicate name 'disk-sda1' (charts[1] (disk-sda1); "
                                     "also charts[0] (disk-{match}) from data/disk-sda1.csv)"),
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
