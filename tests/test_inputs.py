"""Input patterns as a careless user writes them: symlink loops, the whole disk, plotboard's own
files. Each real file reaches the plot at most once, every build finishes, nothing plotboard
writes is ever an input."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import fast_board

from renderer.board.inputs import MAX_INPUTS, TooManyInputs, expand

# A plot that writes the inputs it was handed (relative to the board) to `out`, a file outside
# the board's folder: what it saw.
SEEN = '''
import json, os

def seen(fig, inputs, out, **params):
    root = os.path.dirname(os.path.abspath(__file__))
    with open(out, "w") as f:
        json.dump([os.path.relpath(p, root) for p in inputs], f)
    fig.add_subplot().plot([1, 2, 3])

def line(fig, inputs, **params):
    fig.add_subplot().plot([1, 2])
'''


def chart_with(name: str, patterns: list[str], out: Path) -> str:
    return (f'\n[[charts]]\nname = "{name}"\nplot = "plots:seen"\ninputs = {json.dumps(patterns)}\n'
            f'params = {{ out = "{out}" }}\n')


def test_symlink_loops_give_each_file_once_and_the_build_finishes(tmp_path: Path):
    b = fast_board(tmp_path / "board", chart_with("loops", ["data/**/*.txt"], tmp_path / "seen.json"), plots=SEEN)
    b.data("data/a.txt", "1\n")
    b.data("data/sub/b.txt", "2\n")
    os.symlink(".", b.root / "data" / "loop1")  # glob.glob followed these 41 times and more
    os.symlink("..", b.root / "data" / "sub" / "loop2")
    os.symlink("../data", b.root / "data" / "sub" / "loop3")
    result = b.cli("build", timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "seen.json").read_text()) == ["data/a.txt", "data/sub/b.txt"]


def test_a_folder_reached_through_a_link_counts_once(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.csv").write_text("1")
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "data" / "current")  # not a loop: followed
    os.symlink(tmp_path / "real", tmp_path / "data" / "latest")  # the same folder again: not
    assert expand([f"{tmp_path}/data/**/*.csv"]) == [f"{tmp_path}/data/current/x.csv"]


def test_the_whole_disk_fails_the_chart_alone_and_the_build_finishes(tmp_path: Path):
    b = fast_board(tmp_path / "board", chart_with("all", ["/**/*"], tmp_path / "seen.json"),
                   chart_with("ok", ["data/a.txt"], tmp_path / "ok.json"), plots=SEEN)
    b.data("data/a.txt", "1\n")
    result = b.cli("build", timeout=100)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    error = b.chart("all")["error"]
    assert error.startswith("TooManyInputs: plotboard.toml: charts (all).inputs: '/**/*' match more than"), error
    assert f"{MAX_INPUTS:,}" in error and "\n" not in error
    assert b.chart("ok")["state"] == "ok"


def test_the_limit_is_per_chart_and_counts_files(tmp_path: Path):
    for i in range(MAX_INPUTS + 1):
        (tmp_path / f"{i}.txt").touch()
    try:
        expand([f"{tmp_path}/*.txt"])
    except TooManyInputs as exc:
        assert f"'{tmp_path}/*.txt' match more than {MAX_INPUTS:,} files" in str(exc)
    else:
        raise AssertionError("no TooManyInputs")
    assert len(expand([f"{tmp_path}/[0-4]*.txt"])) < MAX_INPUTS


def test_plotboards_own_files_are_never_inputs_and_a_second_build_renders_nothing(tmp_path: Path):
    b = fast_board(tmp_path / "board", chart_with("everything", ["**/*"], tmp_path / "seen.json"),
                   chart_with("dot", [".plotboard/*", "*/status.json", "*/*.png"], tmp_path / "dot.json"), plots=SEEN)
    b.data("data/a.txt", "1\n")
    first = b.cli("build")
    assert first.returncode == 0, first.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert "data/a.txt" in seen and "plots.py" in seen
    assert not [p for p in seen if p.startswith(("public", ".plotboard"))], seen
    assert json.loads((tmp_path / "dot.json").read_text()) == []
    renders = {c["name"]: c["renders"] for c in b.status()["charts"]}
    second = b.cli("build")
    assert second.returncode == 0, second.stderr
    assert "0 rendered" in second.stderr, second.stderr
    assert {c["name"]: c["renders"] for c in b.status()["charts"]} == renders


def test_the_expansion_hands_back_each_files_size_and_mtime_as_it_saw_them(tmp_path: Path):
    """The fingerprint reads these instead of a second stat per input: they must be the real
    files' (a link's target's), for literal paths and patterns alike, and only for files found."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("12345")
    (tmp_path / "d" / "b.csv").write_text("1")
    os.symlink(tmp_path / "d" / "a.csv", tmp_path / "link.csv")
    stats: dict = {}
    found = expand([str(tmp_path / "link.csv"), str(tmp_path / "d" / "*.csv"), str(tmp_path / "missing.csv")],
                   (), stats)
    assert found == [str(tmp_path / "d" / "b.csv"), str(tmp_path / "link.csv")]  # a.csv is link.csv's file
    for path in found:
        st = os.stat(path)
        assert stats[path] == (st.st_size, st.st_mtime_ns)
    assert set(stats) == set(found) and stats[str(tmp_path / "link.csv")][0] == 5
