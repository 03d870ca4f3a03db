"""README.md documents every board-file key and every command and option of the CLI."""

from __future__ import annotations

import argparse
import re

from conftest import REPO
from renderer.cli import parser
from renderer.config import BOARD_KEYS, CHART_KEYS

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
    missing = sorted(k for k in BOARD_KEYS | CHART_KEYS if f"`{k}`" not in text)
    assert not missing, f"keys missing from README.md's board file section: {missing}"


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
