"""Plot modules as users write them: packages, relative imports, helpers, names bound in ways a
parse cannot be sure of; and edits to any board module reaching every render, in build and run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import chart, fast_board

from renderer.render import plotfunc

# -- item 4: packages and the load-time check ----------------------------------------------------

LINES = '''
def cpu(fig, inputs, **params):
    fig.add_subplot().plot([1, 3, 2])

def mem(fig, inputs, **params):
    fig.add_subplot().plot([2, 1, 3])
'''


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_plot_modules_in_packages_render(tmp_path: Path):
    b = fast_board(tmp_path / "board", chart("pkg", "mycharts:cpu"), chart("sub", "mycharts.lines:cpu"),
                   chart("sub2", "mycharts.lines:mem"), chart("again", "mycharts:cpu"))
    b.file.write_text(b.file.read_text().replace("workers = 2", "workers = 1"))  # one worker loads them all
    write(b.root, {"mycharts/__init__.py": "from .lines import cpu\n", "mycharts/lines.py": LINES})
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    assert {c["name"]: (c["state"], c["error"]) for c in b.status()["charts"]} == {
        name: ("ok", None) for name in ("pkg", "sub", "sub2", "again")}


GUARDED = '''
from plots import *          # re-exports line
try:
    import numpy
    def guarded(fig, inputs, **params):
        fig.add_subplot().plot([1, 2])
except ImportError:
    def guarded(fig, inputs, **params):
        pass
if True:
    def conditional(fig, inputs, **params):
        fig.add_subplot().plot([2, 1])
'''


def test_the_load_check_accepts_modules_python_imports_and_they_render(tmp_path: Path):
    b = fast_board(tmp_path / "board", chart("star", "guarded:line"), chart("tried", "guarded:guarded"),
                   chart("iffed", "guarded:conditional"))
    write(b.root, {"guarded.py": GUARDED})
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    assert {c["state"] for c in b.status()["charts"]} == {"ok"}


@pytest.mark.parametrize("source", [
    "from os.path import *\n",
    "import sys\nsys.modules[__name__].draw = print\n",
    "globals()['draw'] = print\n",
    "def __getattr__(name):\n    return print\n",
    "for _n in ['draw']:\n    exec(f'def {_n}(fig, inputs): pass')\n",
    "with open(__file__) as f:\n    draw = print\n",
    "match 1:\n    case 1:\n        def draw(fig, inputs): pass\n",
])
def test_the_load_check_does_not_reject_when_it_cannot_be_sure(tmp_path: Path, source: str):
    (tmp_path / "dyn.py").write_text(source)
    assert plotfunc.find_plot_file("dyn:draw", tmp_path) == tmp_path / "dyn.py"


def test_the_load_check_still_rejects_a_sure_miss(tmp_path: Path):
    (tmp_path / "plain.py").write_text("import os\nif os.sep:\n    def line(fig, inputs): pass\n")
    with pytest.raises(ValueError, match="has no function 'other'"):
        plotfunc.find_plot_file("plain:other", tmp_path)


# -- item 5: edits to helper modules --------------------------------------------------------------

# A plot whose output depends on a helper two imports away, and that records, per chart, which
# version of the helper drew it (outside the board's folder, so the record is no input).
USES_HELPER = '''
import json, os
from lib.style import colour, VERSION

def line(fig, inputs, out, **params):
    values = [float(v) for p in inputs for v in open(p).read().split()]
    fig.add_subplot().plot(values or [0, 1], color=colour())
    with open(os.path.join(out, params["name"] + ".txt"), "a") as f:
        f.write(f"{VERSION}\\n")
'''
STYLE = "from lib.palette import COLOURS\nVERSION = {v}\ndef colour():\n    return COLOURS[{v} % 2]\n"
PALETTE = "COLOURS = ['red', 'blue']\n"


def helper_board(root: Path, out: Path, names: list[str]):
    charts = [chart(n, "plots:line", f"data/{n}.txt", f'params = {{ out = "{out}", name = "{n}" }}\n')
              for n in names]
    b = fast_board(root, *charts, plots=USES_HELPER)
    write(b.root, {"lib/__init__.py": "", "lib/style.py": STYLE.format(v=1), "lib/palette.py": PALETTE})
    for n in names:
        b.data(f"data/{n}.txt", "1 2 3\n")
    out.mkdir()
    return b


def versions(out: Path, name: str) -> list[str]:
    try:
        return (out / f"{name}.txt").read_text().split()
    except OSError:
        return []


def test_build_re_renders_a_chart_whose_helper_module_changed(tmp_path: Path):
    out = tmp_path / "out"
    b = helper_board(tmp_path / "board", out, ["a"])
    assert b.cli("build").returncode == 0
    before = (b.output / "a.png").read_bytes()
    assert "0 rendered" in b.cli("build").stderr
    (b.root / "lib" / "palette.py").write_text("COLOURS = ['green', 'orange']\n")  # two imports away
    result = b.cli("build")
    assert "1 rendered" in result.stderr, result.stderr
    assert (b.output / "a.png").read_bytes() != before
    assert "0 rendered" in b.cli("build").stderr


def test_run_re_renders_on_a_helper_edit_and_every_later_render_uses_the_new_code(tmp_path: Path, daemons):
    out = tmp_path / "out"
    names = ["a", "b", "c", "d"]
    b = helper_board(tmp_path / "board", out, names)
    d = daemons(b)
    for n in names:
        d.wait_state(n, state="ok")
    (b.root / "lib" / "style.py").write_text(STYLE.format(v=2))
    for n in names:  # each chart re-renders with the new helper, whichever worker draws it
        d.wait_state(n, renders=2, state="ok")
        assert versions(out, n) == ["1", "2"]
    for n in names:  # later renders, spread over both workers, all draw with the new code
        (b.root / "data" / f"{n}.txt").write_text("3 2 1\n")
    for n in names:
        d.wait_state(n, renders=3, state="ok")
    assert {n: versions(out, n) for n in names} == {n: ["1", "2", "2"] for n in names}
    assert json.loads((b.root / ".plotboard" / "state.json").read_text())["charts"]["a"]["modules"]
