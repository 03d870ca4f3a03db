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


def test_init_never_overwrites_the_sample_data_and_writes_nothing_then(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "temperature.csv").write_text("mine\n")
    result = cli("init", tmp_path)
    assert result.returncode == 1, result.stderr
    assert "temperature.csv" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert (tmp_path / "data" / "temperature.csv").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "temperature.csv"]  # nothing half-written


def test_init_into_a_folder_without_its_files_keeps_what_is_there(tmp_path):
    (tmp_path / "notes.txt").write_text("keep\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "other.csv").write_text("keep\n")
    result = cli("init", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep\n" and (tmp_path / "data" / "other.csv").read_text() == "keep\n"
    assert (tmp_path / "data" / "temperature.csv").is_file() and (tmp_path / "plotboard.toml").is_file()


def test_init_on_a_file_says_so_in_one_line(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("mine\n")
    for path in (target, target / "sub"):
        result = cli("init", path)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
        assert str(target) in result.stderr
    assert target.read_text() == "mine\n"


def test_readme_gives_init_the_exit_codes_it_has():
    from test_docs import README

    row = next(line for line in README.splitlines() if line.startswith("| `plotboard init DIR`"))
    assert row.rstrip(" |").endswith("0 written, 1 nothing written: a file it would write exists, or DIR is not a folder")
