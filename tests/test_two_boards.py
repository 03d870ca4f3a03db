"""Two board files in one folder are two boards (DESIGN.md, "The output folder"): each has its own
lock (a guard on the board file itself), socket and bookkeeping (a board file not named
plotboard.toml keeps its own in .plotboard/NAME); two boards set to share one state folder are
refused with one line telling to set `[board] state`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from conftest import Board, chart, cli, fast_board


def board_file(folder: Path, name: str, toml: str) -> Board:
    board = Board(folder)
    board.file = folder / name
    board.file.write_text(textwrap.dedent(toml))
    return board


def test_two_board_files_in_one_folder_are_two_boards(tmp_path, daemons):
    folder = tmp_path / "two"
    a = fast_board(folder, chart("a", inputs="data/a.txt"))
    a.data("data/a.txt", "1 2 3\n")
    a.file = a.file.rename(folder / "a.toml")
    b_toml = a.file.read_text().replace('name = "a"', 'name = "bee"')
    b = board_file(folder, "b.toml", b_toml)
    d = daemons(a)
    d.wait_state("a", state="ok")

    b.file.write_text(b_toml.replace("[board]\n", '[board]\noutput = "public-b"\n', 1))
    own = cli("build", "-c", str(b.file), timeout=120)
    assert own.returncode == 0, own.stderr
    assert "build: 1 rendered" in own.stderr and "done by" not in own.stderr
    assert (folder / "public-b" / "bee.png").is_file()
    assert (folder / ".plotboard" / "b.toml" / "state.json").is_file()
    assert (folder / ".plotboard" / "a.toml" / "state.json").is_file()  # the daemon's, untouched by b's build

    shared_toml = b_toml.replace("[board]\n", '[board]\noutput = "public-b"\nstate = ".plotboard/a.toml"\n', 1)
    b.file.write_text(shared_toml)
    shared = cli("build", "-c", str(b.file), timeout=120)
    assert shared.returncode == 2, shared.stderr
    assert "done by" not in shared.stderr
    assert re.search(r"b\.toml: the state folder .*\.plotboard/a\.toml belongs to the board file .*a\.toml: two "
                     r"boards cannot share one; set \[board\] state in b\.toml", shared.stderr), shared.stderr
    assert len(shared.stderr.strip().splitlines()) == 1, shared.stderr
