"""A board's own templates (`[board] templates`): a broken one is one line naming the template
file and line, never a jinja2 traceback; `build` and a starting `run` exit 2 before writing
anything, a SIGHUP keeps the old board, and a template that fails only on real data keeps the
previous pages."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from conftest import Board, cli_env, write_data

GOOD = "<p>v1</p>{% for c in charts %}<i>{{ c.name }}={{ c.hash }}</i>{% endfor %}\n"

BROKEN = {
    "syntax error": ({"index.html": "<p>\n{% for c in charts %}\n{{ c.name }\n"}, "index.html, line 3: unexpected '}'"),
    "unknown filter": ({"index.html": "<p>\n{{ board.title | shout }}\n"},
                       "index.html, line 2: No filter named 'shout'"),
    "missing include": ({"index.html": "<p>\n\n{% include 'card.html' %}\n"},
                        "index.html, line 3: no template 'card.html'"),
    "error in an include": ({"index.html": "{% include 'card.html' %}\n", "card.html": "ok\n{% if %}\n"},
                            "card.html, line 2: "),
    "exception while rendering": ({"index.html": "<p>\n{% for c in charts %}{{ c.hash.upper() }}{% endfor %}\n"},
                                  "index.html, line 2: UndefinedError: 'None' has no attribute 'upper'"),
    "error only for a failed chart": (
        {"index.html": "{% for c in charts %}\n{% if c.error %}{{ c.error | nope }}{% endif %}{% endfor %}\n"},
        "index.html, line 2: TemplateRuntimeError: No filter named 'nope'"),
}


def with_templates(board: Board, files: dict[str, str]) -> Board:
    folder = board.root / "tpl"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    text = board.file.read_text()
    if "templates =" not in text:
        board.file.write_text(text.replace("[board]\n", '[board]\ntemplates = "tpl"\n', 1))
    return board


def one_line_naming(stderr: str, template: str, expected: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "tpl/" in line]
    assert len(lines) == 1, stderr
    assert f"{template}/{expected}" in lines[0], stderr


@pytest.mark.parametrize("case", list(BROKEN))
def test_build_with_a_broken_template_exits_2_with_one_line_before_writing_anything(board, case):
    files, expected = BROKEN[case]
    with_templates(board, files)
    result = board.cli("build")
    assert result.returncode == 2, result.stderr
    one_line_naming(result.stderr, str(board.root / "tpl"), expected)
    assert "board.templates" in result.stderr and str(board.file) in result.stderr
    assert not board.output.exists() and not (board.root / ".plotboard").exists()


def test_a_starting_run_with_a_broken_template_exits_2_before_writing_anything(board):
    with_templates(board, BROKEN["unknown filter"][0])
    result = subprocess.run([sys.executable, "-m", "renderer", "run", "-c", str(board.file)], cwd=board.root,
                            env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    one_line_naming(result.stderr, str(board.root / "tpl"), BROKEN["unknown filter"][1])
    assert not board.output.exists() and not (board.root / ".plotboard").exists()


def test_a_template_failing_only_on_real_data_keeps_the_previous_pages_and_says_where(built):
    board = with_templates(built, {"index.html": GOOD + "{% if charts[0].renders > 1 %}\n{{ 1 // 0 }}{% endif %}\n"})
    assert board.cli("build").returncode == 0  # the samples it is checked with render once each
    pages = {name: (board.output / name).read_bytes() for name in ("index.html", "status.json")}
    assert pages["index.html"].startswith(b"<p>v1</p>")

    result = board.cli("build", "--force")  # now a.renders is 2: the template divides by zero
    assert result.returncode == 1, result.stderr
    one_line_naming(result.stderr, str(board.root / "tpl"), "index.html, line 3: ZeroDivisionError")
    assert "cannot render index.html" in result.stderr
    for name, data in pages.items():
        assert (board.output / name).read_bytes() == data, f"{name} was rewritten"


def test_sighup_with_a_broken_template_keeps_the_old_board_running(tmp_path, daemons):
    board = Board(tmp_path / "b").write("""
        [board]
        workers = 1
        [defaults]
        size = [2, 1]
        dpi = 40
        hidpi = false
        [[charts]]
        name = "a"
        plot = "plots:line"
        inputs = ["data/a.txt"]
    """)
    board.data("data/a.txt", "1 2 3\n")
    with_templates(board, {"index.html": GOOD})
    d = daemons(board)
    first = d.wait_state("a", state="ok")

    (board.root / "tpl" / "index.html").write_text("<p>v2</p>\n{{ board.title | nope }}\n")
    d.send(signal.SIGHUP)
    log = d.wait_log("reload failed")
    reload_error = log[log.index("reload failed"):].splitlines()[1]
    assert "tpl/index.html, line 2: No filter named 'nope'" in reload_error, log

    write_data(board.root / "data" / "a.txt", [3, 1, 2])  # the old board keeps rendering and writing its pages
    second = d.wait_state("a", renders=first["renders"] + 1)
    page = (board.output / "index.html").read_text()
    assert page.startswith("<p>v1</p>") and f"a={second['hash']}" in page, page
    assert d.stop() == 0
    assert "Traceback" not in d.log and "cannot write the pages" not in d.log, d.log


def test_the_board_file_is_named_with_the_template_problem_and_status_still_reads_the_board(built):
    board = with_templates(built, {"index.html": GOOD})
    assert board.cli("build").returncode == 0
    (board.root / "tpl" / "index.html").write_text("{% endfor %}\n")
    assert board.cli("build").returncode == 2
    status = board.cli("status")  # reads status.json only: the template does not matter to it
    assert status.returncode == 0 and re.match(r"PLOTBOARD OK - 2 charts ok", status.stdout), status


def test_dotted_names_in_templates_resolve_as_jinja2_resolves_them():
    """The pages' environment looks a dict's keys up before its attributes only where jinja2
    would find no attribute: a key named like a dict method still gives the method."""
    import jinja2

    from renderer.pages.templating import make_environment

    source = ("{{ c.state }}|{{ c.items is callable }}|{{ c.missing is undefined }}|{{ c.get('state') }}|"
              "{{ o.real }}|{{ o.state }}")
    context = {"c": {"state": "ok", "items": "a key", "missing_not": 1}, "o": 3}
    expected = jinja2.Environment().from_string(source).render(context)
    assert make_environment(None).from_string(source).render(context) == expected == "ok|True|True|ok|3|"
