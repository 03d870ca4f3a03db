"""README.md documents every board-file key (with the code's type and default) and every command
and option of the CLI."""

from __future__ import annotations

import argparse
import re

import pytest

from conftest import REPO, cli
from renderer.cli import parser
from renderer.board.config import BOARD_KEYS, CHART_KEYS
from renderer.board.alert_options import ALERT_KEYS, ALERT_OPTIONS
from renderer.board.options import BOARD_OPTIONS, CHART_OPTIONS

README = (REPO / "README.md").read_text()


def section(heading: str) -> str:
    """The README section whose heading contains `heading`, down to the next heading of its level."""
    match = re.search(rf"^(#+) [^\n]*{re.escape(heading)}[^\n]*$", README, re.M | re.I)
    assert match, f"README.md has no section about {heading!r}"
    level = len(match.group(1))
    rest = README[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_board_file_key_is_in_the_reference():
    text = section("board file")
    missing = sorted(k for k in BOARD_KEYS | CHART_KEYS | ALERT_KEYS if f"`{k}`" not in text)
    assert not missing, f"keys missing from README.md's board file section: {missing}"


def reference(caption: str) -> dict[str, tuple[str, str]]:
    """The README reference table under the line starting with `caption`: key -> (type, default)."""
    text = section("Reference")
    match = re.search(rf"^{re.escape(caption)}[^\n]*\n\n((?:\|[^\n]*\n)+)", text, re.M)
    assert match, f"README.md's reference has no table under {caption}"
    rows = {}
    for line in match.group(1).splitlines()[2:]:
        key, type_, default, _meaning = (cell.strip() for cell in line.strip("|").split("|"))
        rows[key.strip("`")] = (type_, default)
    return rows


TABLES = {"`[board]`": BOARD_OPTIONS, "`[defaults]` and `[[charts]]`": CHART_OPTIONS, "`[[alerts]]`": ALERT_OPTIONS}
OPTIONS = [pytest.param(caption, o, id=f"{caption.strip('`[]')}.{o.name}")
           for caption, table in TABLES.items() for o in table]


@pytest.mark.parametrize("caption, option", OPTIONS)
def test_every_option_is_in_the_reference_with_its_type_and_default(caption, option):
    rows = reference(caption)
    assert option.name in rows, f"{option.name} is missing from README.md's {caption} table"
    assert rows[option.name] == (option.type_text, option.default_text), \
        f"README.md's {caption} table disagrees with renderer/options.py about {option.name} (type, default)"


@pytest.mark.parametrize("caption", TABLES)
def test_the_reference_lists_no_option_the_code_lacks(caption):
    extra = sorted(set(reference(caption)) - {o.name for o in TABLES[caption]})
    assert not extra, f"README.md's {caption} table lists keys the board file does not accept: {extra}"


def test_the_keys_that_may_not_go_in_defaults_are_named():
    line = next(line for line in section("Reference").splitlines() if line.startswith("`[defaults]`"))
    for option in CHART_OPTIONS:
        assert (f"`{option.name}`" in line) != option.in_defaults, option.name


def test_every_command_is_documented():
    missing = sorted(c for c in commands() if f"plotboard {c}" not in README)
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_command_option_is_documented():
    missing = []
    for name, sp in commands().items():
        for action in sp._actions:
            options = [o for o in action.option_strings if o not in ("-h", "--help")]
            if options and not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", README) for o in options):
                missing.append(f"{name} {options[-1]}")
    assert not missing, f"options missing from README.md: {missing}"


def test_the_config_error_example_is_what_the_code_prints(tmp_path):
    """The README's example of board-file errors, charts counted as the code counts them."""
    example = re.search(r"before writing anything[^\n]*\n\n```\n(.*?)```", README, re.S)
    assert example, "README.md lost its example of board-file errors"
    (tmp_path / "charts.py").write_text("def cpu(fig, inputs):\n    pass\n\ndef disk(fig, inputs):\n    pass\n")
    (tmp_path / "plotboard.toml").write_text(
        '[[charts]]\nname = "cpu"\nplot = "charts:cpu"\ninputs = "data/cpu.csv"\n\n'
        '[[charts]]\nname = "disk"\nplot = "charts:disk"\nevery = "5 minutes"\n')
    result = cli("build", "-c", "plotboard.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == example.group(1).strip()


def test_every_module_is_in_the_readme_s_table_of_rooms():
    """README's "How it works" names each module of the package in its room's rows: a name is
    relative to its room's folder (`render/`...), or to renderer/ in the rows of the basics and
    the entry points."""
    rows = [line for line in section("How it works").splitlines() if line.startswith("| ")][1:]
    named, folder = set(), "renderer/"
    for row in rows:
        room, modules = (c.strip() for c in row.strip("|").split("|")[:2])
        if room:
            folder = f"renderer/{room.strip('`')}" if room.endswith("/`") else "renderer/"
        for name in re.findall(r"`([^`]+\.py)`", modules):
            named.add(name if "/" in name else folder + name)
    modules = {str(p.relative_to(REPO)) for p in (REPO / "renderer").rglob("*.py")
               if "demo_board" not in p.parts and p.name != "__init__.py"}
    assert modules - named == set(), "modules missing from README.md's How it works table"
    assert named - modules == set(), "README.md's How it works table names modules that do not exist"
