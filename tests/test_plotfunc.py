"""The `module:function` contract on its own: parsed, located without importing, loaded in a worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from renderer.render import plotfunc
from renderer.render.jobs import RenderJob


def job(root: Path, plot: str, plot_file: Path | None) -> RenderJob:
    return RenderJob(name="c", plot=plot, plot_file=str(plot_file) if plot_file else None, root=str(root),
                     inputs=(), size=(2.0, 1.0), dpi=10, hidpi=False, formats=("png",),
                     png_compression=1, theme="light", params={})


@pytest.mark.parametrize("wrong", ["plots", "plots:", ":line", "plots:line:x", "1plots:line", "plots:li-ne", 3, None])
def test_parse_rejects_what_is_not_module_colon_function(wrong):
    with pytest.raises(ValueError, match="expected 'module:function'"):
        plotfunc.parse(wrong)


def test_parse_splits_dotted_modules():
    assert plotfunc.parse("pkg.sub:draw") == ("pkg.sub", "draw")


def test_module_next_to_the_board_file_is_found_without_being_imported(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub.py").write_text("raise SystemExit('imported')\ndef draw(fig, inputs):\n    pass\n")
    assert plotfunc.find_plot_file("pkg.sub:draw", tmp_path) == tmp_path / "pkg" / "sub.py"


def test_names_bound_by_import_or_assignment_count_as_functions(tmp_path):
    (tmp_path / "plots.py").write_text("from os.path import join as draw\nline = print\n")
    assert plotfunc.find_plot_file("plots:draw", tmp_path) == tmp_path / "plots.py"
    assert plotfunc.find_plot_file("plots:line", tmp_path) == tmp_path / "plots.py"
    with pytest.raises(ValueError, match="has no function 'other'"):
        plotfunc.find_plot_file("plots:other", tmp_path)


def test_a_module_without_source_is_accepted_unchecked(tmp_path):
    assert plotfunc.find_plot_file("math:anything", tmp_path) is None


def test_locate_sees_an_edit_of_the_module(tmp_path):
    module = tmp_path / "plots.py"
    module.write_text("def line(fig, inputs):\n    pass\n")
    assert plotfunc.locate("plots:line", tmp_path) == module
    assert plotfunc.locate("plots:line", tmp_path) == module  # remembered
    module.write_text("def other(fig, inputs):\n    pass\n")
    os.utime(module, ns=(1, 1))
    with pytest.raises(ValueError, match="has no function 'line'"):
        plotfunc.locate("plots:line", tmp_path)


def test_load_re_executes_a_module_whose_source_changed(tmp_path):
    module = tmp_path / "plots_reload.py"
    module.write_text("def line(fig, inputs):\n    return 1\n")
    assert plotfunc.load_plot_function(job(tmp_path, "plots_reload:line", module))(None, []) == 1
    module.write_text("def line(fig, inputs):\n    return 2\n")
    assert plotfunc.load_plot_function(job(tmp_path, "plots_reload:line", module))(None, []) == 2


def test_load_names_a_missing_function(tmp_path):
    module = tmp_path / "plots_missing.py"
    module.write_text("x = 1\n")
    with pytest.raises(AttributeError, match="module 'plots_missing' has no function 'line'"):
        plotfunc.load_plot_function(job(tmp_path, "plots_missing:line", module))


def test_load_imports_a_module_without_source_the_usual_way(tmp_path):
    assert plotfunc.load_plot_function(job(tmp_path, "math:sqrt", None))(4) == 2
