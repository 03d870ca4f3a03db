"""The board file loader's error paths, through the real CLI: every mistake exits 2 with one
line naming the file, the chart and the key, before anything is written."""

from __future__ import annotations

import pytest

from conftest import PLOTS, TWO_CHARTS, Board


@pytest.fixture
def bad(tmp_path):
    """A board folder with data files, whose board file each test writes itself."""
    b = Board(tmp_path / "board")
    b.root.mkdir()
    b.data("data/a.txt", "1 2 3\n")
    b.data("data/b.txt", "3 2 1\n")
    return b


def rejected(board: Board, toml: str, *parts: str, plots: str = PLOTS) -> str:
    """Build with this board file; assert exit 2, nothing written, and one line naming
    the file and all `parts`. Returns that line."""
    board.write(toml, plots)
    result = board.cli("build")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not board.output.exists(), "the output folder was created"
    assert not (board.root / ".plotboard").exists(), "bookkeeping was written"
    lines = [line for line in result.stderr.splitlines() if str(board.file) in line and all(p in line for p in parts)]
    assert lines, f"no line naming {board.file} and {parts}:\n{result.stderr}"
    return lines[0]


def with_b(extra: str) -> str:
    """TWO_CHARTS with lines added to chart b."""
    return TWO_CHARTS.replace('name = "b"\n', 'name = "b"\n' + extra.strip() + "\n")


def test_valid_board_is_accepted(bad):
    bad.write(TWO_CHARTS)
    assert bad.cli("build").returncode == 0


def test_unknown_top_level_key_is_named_with_the_nearest_known_one(bad):
    line = rejected(bad, TWO_CHARTS + '\n[chart]\nname = "c"\n', "unknown key")
    assert line == f'plotboard: {bad.file}: unknown key "chart": did you mean "charts"?'


def test_unknown_board_key_is_named(bad):
    line = rejected(bad, TWO_CHARTS.replace("[board]\n", "[board]\ncolour = 'red'\n"), "board", "unknown key")
    assert line.endswith(': board: unknown key "colour" (allowed: check_every, executor, output, page_limit, '
                         'refresh, render_timeout, scheduler, state, templates, theme, title, url, workers, zoom_cache)'), line


def test_unknown_defaults_key_is_named(bad):
    line = rejected(bad, TWO_CHARTS.replace("[defaults]\n", "[defaults]\nsizes = [1, 2]\n"), "defaults", "unknown key")
    assert line.endswith(f'{bad.file}: defaults: unknown key "sizes": did you mean "size"?'), line


def test_unknown_chart_key_is_named_with_its_chart(bad):
    line = rejected(bad, with_b('inptus = ["data/b.txt"]'), "(b)", "unknown key")
    assert line.endswith(f'{bad.file}: charts[1] (b): unknown key "inptus": did you mean "inputs"?'), line


@pytest.mark.parametrize("where, toml, message", [
    ("top", 'titel = "x"\n' + TWO_CHARTS, 'unknown key "titel" (allowed: alerts, board, charts, defaults, publish)'),
    ("board", TWO_CHARTS.replace("[board]\n", '[board]\ntitel = "x"\n'), 'board: unknown key "titel": did you mean "title"?'),
    ("board", TWO_CHARTS.replace("[board]\n", "[board]\nwokers = 3\n"), 'board: unknown key "wokers": did you mean "workers"?'),
    ("board", TWO_CHARTS.replace("[board]\n", '[board]\nthem = "dark"\n'), 'board: unknown key "them": did you mean "theme"?'),
    ("defaults", TWO_CHARTS.replace("[defaults]\n", "[defaults]\nhdpi = true\n"),
     'defaults: unknown key "hdpi": did you mean "hidpi"?'),
    ("chart", with_b('titel = "B"'), 'charts[1] (b): unknown key "titel": did you mean "title"?'),
    ("chart", with_b('evrey = "1m"'), 'charts[1] (b): unknown key "evrey": did you mean "every"?'),
    ("chart", with_b('window = ["1d"]'), 'charts[1] (b): unknown key "window": did you mean "windows"?'),
    ("family", TWO_CHARTS + '\n[[charts]]\nname = "f-{stem}"\nforeach = "data/*.txt"\nplot = "plots:line"\n'
     'discription = "x"\n', 'charts[2] (f-{stem}): unknown key "discription": did you mean "description"?'),
    ("nothing close", with_b("zzz = 1"), 'charts[1] (b): unknown key "zzz" (allowed: cron, description, dpi, '),
])
def test_an_unknown_key_names_the_nearest_key_allowed_there(bad, where, toml, message):
    line = rejected(bad, toml, "unknown key")
    assert f"plotboard: {bad.file}: {message}" in line, line
    if where == "nothing close":
        assert "did you mean" not in line


@pytest.mark.parametrize("toml, message", [
    ('theme = "dark"\n' + TWO_CHARTS, 'unknown key "theme" here: it belongs in [board]'),
    ('dpi = 80\n' + TWO_CHARTS,
     'unknown key "dpi" here: it belongs in a [[charts]] table (or in [defaults], for every chart)'),
    (TWO_CHARTS.replace("[board]\n", "[board]\ndpi = 80\n"),
     'board: unknown key "dpi" here: it belongs in a [[charts]] table (or in [defaults], for every chart)'),
    (TWO_CHARTS.replace("[defaults]\n", '[defaults]\nname = "x"\n'),
     'defaults: unknown key "name" here: only a [[charts]] table may set it, each its own'),
    (TWO_CHARTS.replace("[defaults]\n", '[defaults]\ntheme = "dark"\n'),
     'defaults: unknown key "theme" here: it belongs in [board]'),
    (with_b('output = "out"'), 'charts[1] (b): unknown key "output" here: it belongs in [board]'),
])
def test_a_key_in_the_wrong_table_says_where_it_belongs(bad, toml, message):
    line = rejected(bad, toml, "unknown key")
    assert line.endswith(f"{bad.file}: {message}"), line


def test_wrong_type_in_board_is_named(bad):
    rejected(bad, TWO_CHARTS.replace("workers = 2", 'workers = "two"'), "board.workers", "'two'")


def test_wrong_type_in_chart_is_named_with_its_chart(bad):
    rejected(bad, TWO_CHARTS.replace('inputs = ["data/b.txt"]', 'inputs = "data/b.txt"'), "(b)", ".inputs", "list of strings")


def test_wrong_size_is_named(bad):
    rejected(bad, with_b("size = [4]"), "(b)", ".size")


def test_a_value_another_chart_had_right_is_judged_with_its_own_types(bad):
    """Checked values are reused across charts (a fleet shares most of them); `[true, 1]`
    equals `[1, 1]` in Python but is no size, and `1` is no size either."""
    toml = TWO_CHARTS.replace('name = "a"\n', 'name = "a"\nsize = [1, 1]\n')
    rejected(bad, toml.replace('name = "b"\n', 'name = "b"\nsize = [true, 1]\n'), "(b)", ".size", "[True, 1]")
    rejected(bad, toml.replace('name = "b"\n', 'name = "b"\nsize = 1\n'), "(b)", ".size")


def test_wrong_type_in_defaults_is_named_as_defaults(bad):
    line = rejected(bad, TWO_CHARTS.replace("dpi = 50", 'dpi = "high"'), "defaults.dpi", "'high'")
    assert "charts" not in line


def test_bad_name_is_rejected(bad):
    rejected(bad, TWO_CHARTS.replace('name = "b"', 'name = "Chart B"'), "charts[1]", ".name", "'Chart B'")


def test_duplicate_name_is_rejected(bad):
    rejected(bad, TWO_CHARTS.replace('name = "b"', 'name = "a"'), "charts[1] (a).name", "duplicate")


def test_missing_plot_is_rejected(bad):
    rejected(bad, TWO_CHARTS.replace('plot = "plots:line"\ninputs = ["data/b.txt"]', 'inputs = ["data/b.txt"]'),
             "(b)", ".plot", "missing")


def test_unimportable_plot_module_is_rejected(bad):
    rejected(bad, TWO_CHARTS.replace('plot = "plots:line"\ninputs = ["data/b.txt"]',
                                     'plot = "no_such_module:line"\ninputs = ["data/b.txt"]'),
             "(b)", ".plot", "no_such_module")


def test_missing_plot_function_is_rejected(bad):
    rejected(bad, TWO_CHARTS.replace('plot = "plots:line"\ninputs = ["data/b.txt"]',
                                     'plot = "plots:nothing"\ninputs = ["data/b.txt"]'),
             "(b)", ".plot", "'nothing'")


def test_syntax_error_in_plot_module_is_rejected_with_its_line(bad):
    plots = PLOTS + "\ndef broken(fig, inputs:\n    pass\n"
    line = PLOTS.count("\n") + 2
    rejected(bad, TWO_CHARTS, "(a)", ".plot", "plots.py", f"line {line}", plots=plots)


def test_every_and_cron_together_are_rejected(bad):
    rejected(bad, with_b('every = "1m"\ncron = "*/5 * * * *"'), "(b)", "cron", "not both")


def test_bad_duration_is_rejected(bad):
    rejected(bad, with_b('every = "5 minutes"'), "(b)", ".every", "'5 minutes'")


def test_bad_duration_in_board_is_rejected(bad):
    rejected(bad, TWO_CHARTS.replace('render_timeout = "20s"', 'render_timeout = "20x"'), "board.render_timeout", "'20x'")


def test_bad_cron_is_rejected(bad):
    rejected(bad, with_b('cron = "61 * * * *"'), "(b)", ".cron", "61 * * * *")


def test_toml_syntax_error_names_its_line(bad):
    toml = TWO_CHARTS.replace('title = "Chart B"', 'title = "Chart B')
    line = toml.splitlines().index('title = "Chart B') + 1
    rejected(bad, toml, "TOML", f"line {line}")


def test_every_problem_is_reported_in_one_go(bad):
    bad.write(with_b('every = "soon"').replace("workers = 2", "workers = 0"))
    result = bad.cli("build")
    assert result.returncode == 2
    assert "board.workers" in result.stderr and "(b).every" in result.stderr


def problems(board: Board, toml: str) -> list[str]:
    """Build with this board file; assert exit 2, no traceback, nothing written, every line of
    stderr one problem naming the file. Returns those lines, less the file and `plotboard: `."""
    board.write(toml)
    result = board.cli("build")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and not board.output.exists(), result.stderr
    lines = result.stderr.removeprefix("plotboard: ").splitlines()
    assert all(line.startswith(f"{board.file}: ") for line in lines), result.stderr
    return [line.removeprefix(f"{board.file}: ") for line in lines]


WINDOW_LIKE = 'expected a window like "1d" or "7d" (digits and ms, s, m, h, d or w, no spaces)'


def test_every_mistake_in_a_list_of_windows_is_reported_at_once(bad):
    assert problems(bad, with_b('windows = ["1d", "24h", "1 w"]')) == [
        "charts[1] (b).windows: duplicate window '24h' (the same as '1d')",
        f"charts[1] (b).windows: {WINDOW_LIKE}, got '1 w'",
    ]


def test_every_mistake_in_a_table_of_windows_is_reported_at_once(bad):
    toml = with_b('windows = { "1d" = "1m", "1 w" = "1h", "24h" = "5m", "7d" = "8d", "1h" = "often" }')
    assert problems(bad, toml) == [
        f"charts[1] (b).windows: {WINDOW_LIKE}, got '1 w'",
        "charts[1] (b).windows: duplicate window '24h' (the same as '1d')",
        "charts[1] (b).windows: window '7d': interval '8d' is longer than the window",
        "charts[1] (b).windows: window '1h': interval: expected a duration like '500ms', '30s', '5m', '1h' or "
        "'1d', got 'often'",
    ]


def test_windows_set_wrong_in_defaults_are_reported_once_naming_defaults(bad):
    toml = TWO_CHARTS.replace("[defaults]\n", '[defaults]\nwindows = ["1d", "24h", "1 w"]\n')
    assert problems(bad, toml) == [
        "defaults.windows: duplicate window '24h' (the same as '1d')",
        f"defaults.windows: {WINDOW_LIKE}, got '1 w'",
    ]


def test_every_non_finite_number_of_a_value_is_reported_at_once(bad):
    lines = problems(bad, with_b("params = { low = -inf, band = [1.0, nan], high = 1e400 }"))
    assert [line.split(": expected")[0] for line in lines] == [
        "charts[1] (b).params.low", "charts[1] (b).params.band[1]", "charts[1] (b).params.high"]


def test_a_duplicate_name_is_reported_with_the_other_mistakes_of_its_chart(bad):
    assert problems(bad, with_b('every = "soon"').replace('name = "b"', 'name = "a"')) == [
        "charts[1] (a).every: expected a duration like '500ms', '30s', '5m', '1h' or '1d', got 'soon'",
        "charts[1] (a).name: duplicate name 'a' (charts[1] (a); also charts[0] (a))",
    ]


FAMILY = '\n[[charts]]\nname = "f-{stem}"\nforeach = "data/*.txt"\nplot = "plots:line"\ninputs = ["{path}"]\n'


def test_a_family_with_a_bad_placeholder_has_its_other_mistakes_reported_too(bad):
    toml = TWO_CHARTS + FAMILY.replace('"{path}"', '"{file}"') + 'every = "soon"\nwindows = ["1d", "1d"]\ntitel = "F"\n'
    assert problems(bad, toml) == [
        'charts[2] (f-{stem}): unknown key "titel": did you mean "title"?',
        "charts[2] (f-{stem}).inputs[0]: unknown placeholder {file} (known: {match}, {stem}, {path})",
        "charts[2] (f-{stem}).every: expected a duration like '500ms', '30s', '5m', '1h' or '1d', got 'soon'",
        "charts[2] (f-{stem}).windows: duplicate window '1d' (the same as '1d')",
    ]


def test_a_family_without_a_name_is_an_error_not_dropped(bad):
    assert problems(bad, TWO_CHARTS + FAMILY.replace('name = "f-{stem}"\n', "")) == [
        "charts[2].name: missing (every chart needs a name)"]


def test_a_family_whose_name_has_an_unknown_placeholder_is_told_so_once(bad):
    lines = problems(bad, TWO_CHARTS + FAMILY.replace("{stem}", "{host}"))
    assert lines[0] == "charts[2] (f-{host}).name: unknown placeholder {host} (known: {match}, {stem}, {path})"
    assert not [line for line in lines if "matching [a-z0-9]" in line], lines  # not also "a bad name"


def test_durations_accept_every_unit():
    from renderer.board.config import parse_duration

    assert [parse_duration(d) for d in ("500ms", "30s", "5m", "1h", "1d", "2w")] == [
        0.5, 30.0, 300.0, 3600.0, 86400.0, 1209600.0]
    for wrong in ("0s", "-1s", "5", "1y", "53w", "", True):
        with pytest.raises(ValueError):
            parse_duration(wrong)


def test_missing_board_file_is_named(bad):
    result = bad.cli("build")  # nothing written yet: no plotboard.toml
    assert result.returncode == 2
    assert result.stderr == (f"plotboard: {bad.file}: no such board file; run plotboard init {bad.root} "
                             "to start one\n")
    assert not bad.output.exists() and not (bad.root / ".plotboard").exists()


# -- names and the file system: every file made from a name fits the 255 bytes of a file name ---

@pytest.mark.parametrize("length", [235, 238, 251])
def test_a_name_too_long_for_its_files_is_rejected_naming_the_key(bad, length):
    name = "n" * length
    line = rejected(bad, TWO_CHARTS.replace('name = "b"', f'name = "{name}"'), f"charts[1] ({name}).name: too long")
    assert line.endswith(f"too long: {length} characters make files like .NAME@2x.png.abcdef01.tmp {length + 21} "
                         "bytes long, over the 255 bytes a file name may have; make it at most 234 characters"), line


def test_a_window_counts_in_the_length_of_a_name(bad):
    name = "w" * 232
    line = rejected(bad, with_b('windows = ["1d", "30d"]').replace('name = "b"', f'name = "{name}"'),
                    f"charts[1] ({name}).name: too long")
    assert line.endswith("make it at most 230 characters with window '30d'"), line


def test_the_longest_names_allowed_write_every_file(bad):
    """234 characters, and 230 with windows: the temporary file of NAME.WINDOW@2x.png is 255 bytes."""
    toml = TWO_CHARTS.replace("hidpi = false", 'hidpi = true\nformats = ["png", "svg"]')
    bad.write(toml.replace('name = "a"', f'name = "{"a" * 234}"').replace('name = "b"', f'name = "{"b" * 230}"')
              .replace('inputs = ["data/b.txt"]', 'inputs = ["data/b.txt"]\nwindows = ["1d", "30d"]'))
    result = bad.cli("build")
    assert result.returncode == 0, result.stderr
    written = {p.name for p in bad.output.iterdir()}
    assert {f"{'a' * 234}@2x.png", f"{'a' * 234}.svg", f"{'b' * 230}.30d@2x.png", f"{'b' * 230}.30d.svg"} <= written
    assert bad.cli("status").returncode == 0


def test_a_group_too_long_for_its_page_is_rejected_naming_the_key(bad):
    group = "g" * 240
    toml = TWO_CHARTS.replace("[board]\n", "[board]\npage_limit = 1\n").replace("[defaults]\n", f'[defaults]\ngroup = "{group}"\n')
    line = rejected(bad, toml, "defaults.group: too long")
    assert line.endswith("defaults.group: too long: the group's id (its name lowercased, other characters made '-') "
                         "has 240 characters, and names its files groups/ID.html and status/ID.json; make it at most "
                         "200 characters"), line
    bad.write(toml.replace(group, "G" * 200))  # the longest allowed: a split board's group page is written
    result = bad.cli("build")
    assert result.returncode == 0, result.stderr
    assert (bad.output / "groups" / f"{'g' * 200}.html").is_file()


def test_a_board_file_starting_with_a_byte_order_mark_is_told_so(bad):
    bad.write(TWO_CHARTS)
    bad.file.write_bytes(b"\xef\xbb\xbf" + bad.file.read_bytes())
    result = bad.cli("build")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "byte order mark (BOM)" in result.stderr and "without one" in result.stderr, result.stderr
    assert "invalid TOML" not in result.stderr


@pytest.mark.parametrize("size", ["[1e-9, 1e-9]", "[8, 0.01]"])
def test_a_size_too_small_to_draw_is_refused_at_load(bad, size):
    line = rejected(bad, with_b(f"size = {size}"), "(b)", ".size", "at least 10 pixels")
    assert "make size or dpi larger" in line


def test_a_small_size_that_still_makes_pixels_is_accepted(bad):
    bad.write(with_b("size = [0.2, 0.2]"))  # 10 × 10 pixels at dpi 50
    assert bad.cli("build").returncode == 0


def test_a_cron_expression_with_seconds_is_refused(bad):
    line = rejected(bad, with_b('cron = "0 */5 * * * *"'), "(b)", ".cron", "5 fields")
    assert "got 6" in line


def test_too_many_workers_is_refused_naming_the_key(bad):
    line = rejected(bad, TWO_CHARTS.replace("workers = 2", "workers = 100000"), "board.workers", "at most")
    assert "100000" in line
