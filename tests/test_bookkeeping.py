""".plotboard/state.json of any shape: `build` and `run` never crash on it, drop what is invalid
with one warning, and never delete a file plotboard could not have written."""

from __future__ import annotations

import json

import pytest

from conftest import Board, chart, fast_board, write_data
from daemon_helpers import Daemon
from test_special_files import limited, make_special, run_cli
from renderer.store.record_check import CHECKS, check_record, could_have_written
from renderer.store.records import ChartRecord

CORRUPT = {
    "charts is a list": {"charts": []},
    "record is a number": {"charts": {"a": 5}},
    "record is null": {"charts": {"a": None}},
    "renders is text": {"charts": {"a": {"renders": "many"}}},
    "no charts, only renders": {"renders": "many"},
    "top level is a list": [1, 2],
    "time is infinite": {"charts": {"a": {"rendered_at": 1e400, "fingerprint": "x"}}},
    "time out of range": {"charts": {"a": {"rendered_at": 1e20, "fingerprint": "x"}}},
    "renders is true": {"charts": {"a": {"renders": True}}},
    "error is a list": {"charts": {"a": {"error": ["x"], "failed_at": 1.0}}},
    "hash is not hex": {"charts": {"a": {"hash": "<script>", "rendered_at": 1.0}}},
    "files is text": {"charts": {"a": {"files": "abc"}}},
    "chart name is a path": {"charts": {"../x": {"files": []}}},
}


def state_file(board: Board):
    return board.root / ".plotboard" / "state.json"


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " WARNING " in line]


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_build_survives_corrupt_records_with_one_warning(built, content):
    board = built
    state_file(board).write_text(json.dumps(content))
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(warnings(result.stderr)) == 1 and "state.json" in warnings(result.stderr)[0], result.stderr
    assert {c["name"]: c["state"] for c in board.status()["charts"]} == {"a": "ok", "b": "ok"}
    again = board.cli("build")  # the bookkeeping written meanwhile is whole again
    assert again.returncode == 0 and not warnings(again.stderr), again.stderr
    assert "0 rendered, 0 failed, 2 up to date" in again.stderr


@pytest.mark.parametrize("content", ["{not json", "", "\xff", "[" * 100_000 + "]" * 100_000],
                         ids=["not json", "empty", "not utf-8", "nested too deep"])
def test_build_survives_an_unreadable_state_file(built, content):
    board = built
    state_file(board).write_bytes(content.encode("latin-1"))
    (board.root / ".plotboard" / "pages.digest").write_bytes(b"\xff\xfe")
    result = board.cli("build")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(warnings(result.stderr)) == 1, result.stderr
    assert board.chart("a")["state"] == "ok"


def test_records_never_make_plotboard_delete_what_it_did_not_write(built):
    """Records of removed charts whose files are not theirs: nothing is deleted, nothing refused."""
    board = built
    for name in ("a", "b", "c", "notes.txt", ".hidden"):
        (board.output / name).write_text("the user's")
    good = json.loads(state_file(board).read_text())["charts"]
    state_file(board).write_text(json.dumps({"charts": {
        **good,
        "zz": {"files": ["../plotboard.toml"]},
        "yy": {"files": "abc"},
        "xx": {"files": ["a.png", "notes.txt"]},  # another chart's image, a user's file
        "ww": {"files": [".hidden"]},
        "vv": {"files": ["vv.png", "vv@2x.png", "vv.7d.png"]},  # a removed chart's own images
    }}))
    for name in ("vv.png", "vv@2x.png", "vv.7d.png"):
        (board.output / name).write_bytes(b"old image")
    for attempt in range(2):  # not refused now, nor at any later build
        result = board.cli("build")
        assert result.returncode == 0, result.stderr
        assert "refusing" not in result.stderr and "Traceback" not in result.stderr
    assert board.file.is_file() and (board.root / "plots.py").is_file()
    for name in ("a", "b", "c", "notes.txt", ".hidden", "a.png", "b.png"):
        assert (board.output / name).exists(), name
    for name in ("vv.png", "vv@2x.png", "vv.7d.png"):
        assert not (board.output / name).exists(), f"{name} of the removed chart vv is still there"
    assert set(json.loads(state_file(board).read_text())["charts"]) == {"a", "b"}


def test_run_starts_on_corrupt_records_and_keeps_running(tmp_path, daemons):
    board = fast_board(tmp_path / "board", chart("a", inputs="a.txt"), chart("b", inputs="b.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    write_data(board.root / "b.txt", [3, 2, 1])
    (board.root / ".plotboard").mkdir()
    state_file(board).write_text(json.dumps({"charts": {"a": None, "b": {"renders": "many", "files": "abc"}}}))
    d = daemons(board)
    d.wait_state("a", state="ok")
    d.wait_state("b", state="ok", renders=1)
    assert d.count(" WARNING ") == 1 and "state.json" in d.log
    before = d.image("a")
    write_data(board.root / "a.txt", [5, 1, 5])
    d.new_image("a", before)
    assert d.stop() == 0 and "Traceback" not in d.log


def test_could_have_written_only_a_charts_own_image_names():
    for name in ("cpu.png", "cpu@2x.png", "cpu.svg", "cpu.7d.png", "cpu.365d@2x.png", "cpu.500ms.svg"):
        assert could_have_written("cpu", name), name
    for name in ("cpu", "cpu.txt", "cpu2.png", "cpu-x.png", ".cpu.png", "cpu/.png", "../cpu.png", "cpu.png/x",
                 "cpu..png", "cpu.7d/.png", "cpu.png\n", "other.png", "index.html", "status.json", "", None, 5, ["cpu.png"]):
        assert not could_have_written("cpu", name), name
    assert not could_have_written("../x", "../x.png") and not could_have_written("", ".png")


def test_every_record_field_has_its_check():
    assert set(CHECKS) == set(vars(ChartRecord()))
    assert check_record("a", vars(ChartRecord())) == {**vars(ChartRecord()), "files": []}
    assert check_record("a", {"error": "E" * 5000})["error"].endswith("[cut: 5000 characters in all]")


def test_state_saved_from_kept_json_has_the_very_bytes_of_a_full_save(built):
    """The daemon re-encodes only the records changed since its last save (renderer.store.records.save_state
    with `kept`): after renders, a new chart, a removed one and a failure, the bytes are a full
    save's, and the file loads back to the same records."""
    from renderer.board.config import load_board
    from renderer.store.records import STATE_FILE, load_state, save_state

    board = load_board(built.file)
    records, kept = load_state(board), {}
    assert save_state(board, records, kept, None) == save_state(board, records)
    records["a"].renders += 1
    records["a"].rendered_at = 1e9 + 0.5
    records["new"] = ChartRecord(hash="ab", rendered_at=2.0, renders=1, files=["new.png"])
    assert save_state(board, records, kept, {"a", "new"}) == save_state(board, records)
    del records["b"]
    records["new"].error = 'ValueError: "quoted" \u00e9\n'
    text = save_state(board, records, kept, {"new"})
    assert text == save_state(board, records)
    assert (board.state_dir / STATE_FILE).read_bytes() == text
    assert set(kept) == {"a", "new"}
    assert {n: vars(r) for n, r in load_state(board).items()} == {n: vars(r) for n, r in records.items()}


def test_a_build_with_nothing_to_do_keeps_valid_bookkeeping_as_it_reads(built):
    """Valid records that nothing changed are not encoded and written again (whatever their
    layout); once a record is dropped as invalid, the file is written afresh without it."""
    board = built
    pretty = json.dumps(json.loads(state_file(board).read_text()), indent=2).encode()
    state_file(board).write_bytes(pretty)
    result = board.cli("build")
    assert result.returncode == 0 and "0 rendered, 0 failed, 2 up to date" in result.stderr, result.stderr
    assert state_file(board).read_bytes() == pretty
    records = json.loads(pretty)["charts"]
    state_file(board).write_text(json.dumps({"charts": {**records, "zz": {"renders": "many"}}}, indent=2))
    result = board.cli("build")
    assert result.returncode == 0 and len(warnings(result.stderr)) == 1, result.stderr
    assert "0 rendered" in result.stderr
    assert json.loads(state_file(board).read_bytes()) == {"version": 1, "charts": records}


@pytest.mark.parametrize("kind", ["fifo", "zero"])
@pytest.mark.parametrize("name", ["state.json", "pages.json", "lock"])
def test_a_special_file_in_the_bookkeeping_is_replaced_never_read(built, name, kind):
    """A FIFO (open() would block for ever) or a link to /dev/zero (read() would take all
    memory) where plotboard keeps its bookkeeping: refused as unreadable, written afresh."""
    board = built
    path = board.root / ".plotboard" / name
    make_special(path, kind)
    result = run_cli("build", "-c", board.file)  # its timeout: the proof that nothing hangs
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    said = warnings(result.stderr)
    if name == "state.json":  # as a file that is not JSON: one warning, every chart afresh
        assert len(said) == 1 and str(path) in said[0] and "not a regular file" in said[0], result.stderr
        assert "2 rendered" in result.stderr
    else:
        assert not said, result.stderr
    assert path.is_file() and not path.is_symlink()
    assert {c["name"]: c["state"] for c in board.status()["charts"]} == {"a": "ok", "b": "ok"}
    again = run_cli("build", "-c", board.file)
    assert again.returncode == 0 and not warnings(again.stderr), again.stderr
    assert "0 rendered, 0 failed, 2 up to date" in again.stderr


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_run_starts_on_a_special_state_file(tmp_path, kind):
    board = fast_board(tmp_path / "board", chart("a", inputs="a.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    (board.root / ".plotboard").mkdir()
    make_special(state_file(board), kind)
    d = Daemon(board, preexec_fn=limited)
    try:
        d.wait_state("a", state="ok")
        assert d.count(" WARNING ") == 1 and "not a regular file" in d.log, d.log
        assert d.stop() == 0
    finally:
        d.close()
    assert state_file(board).is_file() and not state_file(board).is_symlink()
    assert "Traceback" not in d.log
