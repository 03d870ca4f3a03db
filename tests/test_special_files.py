"""Special files where plotboard reads back its own files or the board file (a FIFO, a link to
/dev/zero): one line naming the file, never a hang or a traceback; and symbolic links planted
where plotboard writes its bookkeeping: the files they point to are never changed.

Every command runs with a subprocess timeout (the proof that nothing hangs) and a data-segment
limit (so that a regression reading /dev/zero fails with a MemoryError instead of taking the
machine's memory).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Board, chart, cli_env, fast_board, wait_for, write_data
from daemon_helpers import Daemon

DATA_LIMIT = 2 * 1024 ** 3  # bytes: far more than any command here needs


def limited() -> None:
    """preexec_fn: the command's data segment (and its workers') bounded."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, hard))


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "renderer", *map(str, args)], env=cli_env(), capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limited)


def make_special(path: Path, kind: str) -> None:
    """Put a FIFO, or a symbolic link to /dev/zero, at path (whatever was there goes)."""
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


KINDS = ["fifo", "zero"]
SAID = {"fifo": "not a regular file but a FIFO", "zero": "not a regular file but a character device"}


def only_line(text: str, *parts: str) -> str:
    """The one line of `text`, which must hold every part."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and all(p in lines[0] for p in parts), text
    return lines[0]


# -- the board file -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["build", "run"])
def test_a_special_board_file_is_refused_in_one_line(board, kind, command):
    make_special(board.file, kind)
    result = run_cli(command, "-c", board.file)
    assert result.returncode == 2, result.stderr
    only_line(result.stderr, str(board.file), "cannot read the board file", SAID[kind])
    assert not board.output.exists() and not (board.root / ".plotboard").exists()


@pytest.mark.parametrize("kind, said", [("fifo", "a FIFO"), ("zero", "a character device"), ("folder", "a folder")])
def test_an_input_that_is_no_regular_file_is_named_for_what_it_is(built, kind, said):
    """A literal input that is a FIFO, a device or a folder: the load warning and the card's
    `waiting_for` say what it is, never that it does not exist."""
    path = built.root / "data/b.txt"
    if kind == "folder":
        path.unlink()
        path.mkdir()
    else:
        make_special(path, kind)
    result = run_cli("build", "-c", built.file)
    assert "does not exist" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    only_line("\n".join(line for line in result.stderr.splitlines() if "WARNING" in line),
              str(built.file), "charts[1] (b).inputs", f"data/b.txt is {said}, not a regular file")
    assert built.chart("b")["waiting_for"] == [f"data/b.txt ({said}, not a regular file)"]
    assert built.chart("a")["waiting_for"] == []


@pytest.mark.parametrize("kind", KINDS)
def test_status_with_a_special_board_file_is_unknown_in_one_line(built, kind):
    make_special(built.file, kind)
    result = run_cli("status", "-c", built.file)
    assert result.returncode == 3, result.stdout + result.stderr
    only_line(result.stdout, "PLOTBOARD UNKNOWN", str(built.file), SAID[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_a_reload_of_a_special_board_file_keeps_the_board(tmp_path, kind):
    board = fast_board(tmp_path / "b", chart("a", inputs="a.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    d = Daemon(board, preexec_fn=limited)
    try:
        d.wait_state("a", state="ok")
        good = board.file.read_text()
        make_special(board.file, kind)
        d.send(signal.SIGHUP)
        log = d.wait_log("reload failed", what="the reload to fail")
        assert SAID[kind] in log[log.index("reload failed"):], log
        before = d.image("a")
        write_data(board.root / "a.txt", [3, 1, 2])
        d.new_image("a", before, what="the daemon to keep rendering the old board")
        board.file.unlink()
        board.file.write_text(good)
        assert d.stop() == 0
    finally:
        d.close()
    assert "Traceback" not in d.log, d.log


# -- status.json --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_status_with_a_special_status_json_is_unknown_in_one_line(built, kind):
    make_special(built.output / "status.json", kind)
    result = run_cli("status", "-c", built.file)
    assert result.returncode == 3, result.stdout + result.stderr
    only_line(result.stdout, "PLOTBOARD UNKNOWN", str(built.output / "status.json"), SAID[kind])
    again = run_cli("build", "-c", built.file)  # a build writes it whole again
    assert again.returncode == 0, again.stderr
    assert run_cli("status", "-c", built.file).returncode == 0


# -- plot and board modules (their digests) -----------------------------------------------------

PLOTS_WITH_HELPER = '''
import helpers

def line(fig, inputs, **params):
    ax = fig.add_subplot()
    for path in inputs:
        ax.plot(helpers.values(path))
'''

HELPERS = '''
def values(path):
    return [float(v) for v in open(path).read().split()]
'''


def helper_board(root: Path) -> Board:
    board = fast_board(root, chart("a", inputs="a.txt"), plots=PLOTS_WITH_HELPER)
    (board.root / "helpers.py").write_text(HELPERS)
    write_data(board.root / "a.txt", [1, 2, 3])
    return board


@pytest.mark.parametrize("kind", KINDS)
def test_a_special_plot_module_is_named_at_load(tmp_path, kind):
    board = helper_board(tmp_path / "b")
    assert run_cli("build", "-c", board.file).returncode == 0
    make_special(board.root / "plots.py", kind)
    result = run_cli("build", "-c", board.file)
    assert result.returncode == 2, result.stderr
    only_line(result.stderr, str(board.root.resolve() / "plots.py"), SAID[kind], "charts[0] (a).plot")


@pytest.mark.parametrize("kind", KINDS)
def test_a_special_board_module_fails_the_render_naming_it(tmp_path, kind):
    """The chart's last render used helpers.py: its digest is read for the fingerprint."""
    board = helper_board(tmp_path / "b")
    assert run_cli("build", "-c", board.file).returncode == 0
    make_special(board.root / "helpers.py", kind)
    result = run_cli("build", "-c", board.file)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    error = board.chart("a")["error"]
    assert str(board.root.resolve() / "helpers.py") in error and SAID[kind] in error, error


@pytest.mark.parametrize("kind", KINDS)
def test_the_daemon_survives_its_plot_module_turning_special(tmp_path, kind):
    board = helper_board(tmp_path / "b")
    d = Daemon(board, preexec_fn=limited)
    try:
        d.wait_state("a", state="ok")
        make_special(board.root / "plots.py", kind)
        st = d.wait_state("a", state="error")
        assert str(board.root.resolve() / "plots.py") in st["error"] and SAID[kind] in st["error"], st
        assert d.stop() == 0
    finally:
        d.close()
    assert "Traceback" not in d.log, d.log


# -- links planted where the bookkeeping is written ---------------------------------------------

STATE_FILES = ["lock", "state.json", "pages.json"]


def plant(board: Board, victims: Path) -> dict[Path, bytes]:
    """A link from each state file to a victim file of its own; returns the victims' bytes."""
    victims.mkdir(exist_ok=True)
    kept = {}
    for name in STATE_FILES:
        victim = victims / f"victim-{name}"
        victim.write_bytes(f"the victim's own {name}\n".encode())
        kept[victim] = victim.read_bytes()
        link = board.root / ".plotboard" / name
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(victim)
    return kept


def test_a_build_never_writes_through_links_planted_in_the_state_folder(built, tmp_path):
    kept = plant(built, tmp_path / "victims")
    result = run_cli("build", "-c", built.file)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    for victim, data in kept.items():
        assert victim.read_bytes() == data, victim
    state = built.root / ".plotboard"
    assert not any((state / name).is_symlink() for name in ("lock", "state.json")), os.listdir(state)
    assert (state / "lock").stat().st_mode & 0o777 == 0o600


def test_the_daemon_never_writes_through_a_link_planted_at_its_lock(tmp_path):
    board = fast_board(tmp_path / "b", chart("a", inputs="a.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    d = Daemon(board, preexec_fn=limited)
    try:
        d.wait_state("a", state="ok")
        lock = board.root / ".plotboard" / "lock"
        victim = tmp_path / "victim"
        victim.write_text("the victim's own\n")
        aside = lock.with_name("lock-aside")
        aside.symlink_to(victim)
        os.replace(aside, lock)  # in one step, as someone racing the daemon would
        # The daemon looks at its lock every few seconds: it takes a lock file of its own again.
        def replaced() -> bool:
            return victim.read_text() != "the victim's own\n" or (
                not lock.is_symlink() and lock.is_file() and lock.read_text().startswith(f"plotboard run (pid {d.proc.pid})\n"))
        wait_for(replaced, 60, "the daemon to replace the link at .plotboard/lock")
        assert victim.read_text() == "the victim's own\n"
        assert lock.stat().st_mode & 0o777 == 0o600
        assert d.stop() == 0
    finally:
        d.close()
