import re

from conftest import cli


def test_builds_two_charts_and_writes_manifest(board):
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert (board.output / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [c["state"] for c in board.status()["charts"]] == ["ok", "ok"]


def test_help_lists_every_command():
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    # argparse lists each command on a line of its own: "    run       the daemon: ..."
    commands = [line.split()[0] for line in result.stdout.splitlines() if re.match(r"    [a-z]+ {2,}\S", line)]
    for command in ("run", "build", "status", "init", "demo"):
        assert command in commands, result.stdout
