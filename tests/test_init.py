"""`plotboard init DIR`: a small board that builds as it is."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import urllib.request

import psutil

from conftest import cli, cli_env, free_port, wait_for

WROTE = "plotboard.toml, charts.py, data/temperature.csv"
NEXT = "plotboard run --serve 8000, then open http://127.0.0.1:8000/"


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


def test_init_dot_tells_the_next_step_without_a_cd(tmp_path):
    result = cli("init", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote a new board here: {WROTE}\nnext: {NEXT}\n"
    assert (tmp_path / "plotboard.toml").is_file()


def test_init_of_this_folder_by_another_name_tells_no_cd_either(tmp_path):
    result = cli("init", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote a new board here: {WROTE}\nnext: {NEXT}\n"


def test_init_dir_tells_to_cd_there_quoted_for_the_shell(tmp_path):
    result = cli("init", "my board", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote a new board in 'my board': {WROTE}\nnext: cd 'my board' && {NEXT}\n"
    assert (tmp_path / "my board" / "plotboard.toml").is_file()


def test_init_dot_where_a_board_is_refuses_and_changes_nothing(tmp_path):
    cli("init", ".", cwd=tmp_path)
    (tmp_path / "plotboard.toml").write_text("# mine\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = cli("init", ".", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert result.stderr == ("plotboard: plotboard.toml already exists: there is a board there already; "
                             "plotboard init never overwrites anything: choose another folder\n")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_the_next_step_init_prints_works_as_it_is_pasted(tmp_path):
    """The printed command, run by a shell in the folder init ran in (on another port), serves
    the new board with its chart rendered; SIGTERM stops it with status 0."""
    result = cli("init", "my board", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    command, url = re.fullmatch(r"next: (.*), then open (\S+)", result.stdout.splitlines()[-1]).groups()
    port = free_port()
    command, url = command.replace("8000", str(port)), url.replace("8000", str(port))
    bin_dir = tmp_path / "bin"  # `plotboard` as the console script runs it: this checkout's CLI
    bin_dir.mkdir()
    (bin_dir / "plotboard").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m renderer "$@"\n')
    (bin_dir / "plotboard").chmod(0o755)
    env = cli_env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        shell = subprocess.Popen(["sh", "-c", command], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        def rendered():
            assert shell.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url + "status.json", timeout=5) as answer:
                    charts = json.load(answer)["charts"]
                with urllib.request.urlopen(url, timeout=5) as answer:
                    page = answer.read().decode()
            except OSError:
                return False
            return [c["state"] for c in charts] == ["ok"] and 'data-name="temperature"' in page

        wait_for(rendered, 120, f"the board at {url} with its chart rendered")
        [daemon] = psutil.Process(shell.pid).children()
        daemon.terminate()
        assert shell.wait(60) == 0, log.read_text()
    finally:
        for p in psutil.Process(shell.pid).children(recursive=True) if shell.poll() is None else []:
            p.kill()
        if shell.poll() is None:
            shell.kill()
        shell.wait()
