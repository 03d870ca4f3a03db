from conftest import cli


def test_builds_two_charts_and_writes_manifest(board):
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert (board.output / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [c["state"] for c in board.status()["charts"]] == ["ok", "ok"]


def test_help_lists_every_command():
    out = cli("--help").stdout
    for command in ("run", "build", "status", "init", "demo"):
        assert command in out
