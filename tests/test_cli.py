"""The command line as a new user first meets it: no board file yet, help for every argument."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

import pytest

from conftest import cli, cli_env
from renderer.cli import parser

NO_BOARD = "no plotboard.toml here: run plotboard init . or pass -c FILE"


@pytest.mark.parametrize("command", ["build", "run"])
def test_build_and_run_without_a_board_file_say_to_run_init_in_one_line(tmp_path, command):
    result = cli(command, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"plotboard: {NO_BOARD}\n"
    assert list(tmp_path.iterdir()) == [], "something was written"


def test_status_without_a_board_file_says_to_run_init_as_a_monitoring_plugin_does(tmp_path):
    result = cli("status", cwd=tmp_path)
    assert result.returncode == 3, result.stdout  # UNKNOWN: status keeps the monitoring-plugin codes
    assert result.stdout == f"PLOTBOARD UNKNOWN - {NO_BOARD}\n" and result.stderr == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["build", "run"])
def test_a_board_file_given_with_c_that_does_not_exist_is_named(tmp_path, command):
    for given, init in [("ops.toml", "DIR"), ("boards/ops/plotboard.toml", "boards/ops"),
                        (str(tmp_path / "my boards" / "plotboard.toml"), f"'{tmp_path / 'my boards'}'")]:
        result = cli(command, "-c", given, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"plotboard: {given}: no such board file; run plotboard init {init} to start one\n"
    assert list(tmp_path.iterdir()) == []


def test_status_names_a_board_file_given_with_c_that_does_not_exist(tmp_path):
    result = cli("status", "-c", "ops.toml", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == "PLOTBOARD UNKNOWN - ops.toml: no such board file; run plotboard init DIR to start one\n"


def actions(p: argparse.ArgumentParser, prefix: str = "plotboard"):
    """(command, action) for every argument of the parser and of its subcommands, recursively;
    a subcommand counts as an argument of its parent."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield prefix, choice
            for name, sub in action.choices.items():
                yield from actions(sub, f"{prefix} {name}")
        else:
            yield prefix, action


def test_every_argument_of_every_command_has_help_text():
    found = list(actions(parser()))
    assert {c for c, _ in found} >= {"plotboard", "plotboard build", "plotboard run", "plotboard status",
                                     "plotboard init", "plotboard demo"}
    missing = [f"{command} {action.option_strings or action.metavar or action.dest}"
               for command, action in found if not action.help or action.help == argparse.SUPPRESS]
    assert not missing, f"arguments without help text: {missing}"


@pytest.mark.parametrize("command, text", [
    ("status", "-c FILE, --config FILE board file (default: ./plotboard.toml)"),
    ("init", "DIR the folder to write it into"),
])
def test_help_shows_the_text_of_status_c_and_init_dir(command, text):
    result = cli(command, "--help")
    assert result.returncode == 0 and text in " ".join(result.stdout.split()), result.stdout


@pytest.mark.parametrize("args", [["build", "--only", "run"], ["build", "--only", "a", "run"], ["status"]])
def test_only_the_run_command_holds_sigterm_back_not_a_chart_named_run(tmp_path, args):
    """SIGTERM is recorded rather than obeyed only while `run` starts: a `build` that merely
    names a chart "run" (or any other command) dies of it at once."""
    code = ("import os, signal; from renderer.cli import main\n"
            f"main({args!r} + ['-c', 'nothere.toml'])\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "print('survived SIGTERM')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGTERM, (result.stdout, result.stderr)
    assert "survived" not in result.stdout
