"""`plotboard init DIR`: a small board that builds as it is."""

from __future__ import annotations

from conftest import cli


def test_init_writes_a_board_that_builds_as_it_is(tmp_path):
    target = tmp_path / "new" / "board"
    result = cli("init", target)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in target.iterdir()} >= {"plotboard.toml", "charts.py", "data"}
    build = cli("build", cwd=target)  # -c defaults to ./plotboard.toml
    assert build.returncode == 0, build.stderr
    assert (target / "public/index.html").is_file()
    assert cli("status", cwd=target).returncode == 0
    pngs = list((target / "public").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_init_never_overwrites_an_existing_board(tmp_path):
    (tmp_path / "plotboard.toml").write_text("# mine\n")
    result = cli("init", tmp_path)
    assert result.returncode == 1
    assert "plotboard.toml" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "plotboard.toml").read_text() == "# mine\n"
    assert not (tmp_path / "charts.py").exists()
