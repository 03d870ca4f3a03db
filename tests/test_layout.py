"""Figures are made with constrained layout unless a chart says `layout = "none"`: the last tick
label, the offset text and the axis labels are never cut at the image's edge. Checked in real
builds: the plot records, at draw time, where each text it drew lies in the saved image."""

from __future__ import annotations

import json

import pytest

from conftest import Board

PLOTS = '''
import json

def edge(fig, inputs, out="", **params):
    """A chart whose last x tick label sits on the axes' right edge (a long one, as a time
    label is), y values that need offset text, a y label and a title."""
    ax = fig.add_subplot()
    ax.plot([0, 5, 10], [1e6 + 1, 1e6 + 3, 1e6 + 2])
    ax.set_xlim(0, 10)
    ax.set_xticks([0, 5, 10], ["2026-12-06 11:40", "11:45", "2026-12-06 11:50"])
    ax.set_ylabel("requests / s")
    ax.set_title("a title as long as the axes are wide, or longer")

    def drawn(event):
        r = event.renderer
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        drawn_x = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]  # ticks in view: drawn
        drawn_y = [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        texts = [t for t in [*drawn_x, *drawn_y, ax.yaxis.get_offset_text(), ax.yaxis.label, ax.title]
                 if t.get_visible() and t.get_text()]
        boxes = [[t.get_text(), *t.get_window_extent(r).extents] for t in texts]
        with open(out, "w") as f:
            json.dump({"figure": list(fig.bbox.extents), "texts": boxes}, f)

    fig.canvas.mpl_connect("draw_event", drawn)
'''


def board_with(root, layout: str | None) -> Board:
    extra = f'layout = "{layout}"\n' if layout is not None else ""
    out = root / "extents.json"
    return Board(root).write(f"""
[board]
title = "layout"
workers = 1
render_timeout = "60s"

[[charts]]
name = "edge"
plot = "plots:edge"
size = [4, 2.5]
dpi = 100
hidpi = false
params = {{ out = "{out}" }}
{extra}""", plots=PLOTS)


def outside(extents: dict) -> list[str]:
    """The texts that reach past the figure's edge, by more than a pixel's rounding."""
    x0, y0, x1, y1 = extents["figure"]
    return [t[0] for t in extents["texts"] if t[1] < x0 - 0.5 or t[2] < y0 - 0.5 or t[3] > x1 + 0.5 or t[4] > y1 + 0.5]


@pytest.mark.parametrize("layout", [None, "constrained", "tight"])
def test_every_tick_label_and_the_offset_text_lie_inside_the_image(tmp_path, layout):
    board = board_with(tmp_path / "b", layout)
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    extents = json.loads((board.root / "extents.json").read_text())
    assert extents["figure"] == [0.0, 0.0, 400.0, 250.0]  # the image keeps its size: no tight cropping
    assert any(t[0] == "2026-12-06 11:50" for t in extents["texts"])
    assert any("1e6" in t[0] for t in extents["texts"]), extents  # the offset text
    assert outside(extents) == [], extents
    assert board.chart("edge")["state"] == "ok"


def test_layout_none_keeps_matplotlibs_fixed_margins(tmp_path):
    board = board_with(tmp_path / "b", "none")
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    extents = json.loads((board.root / "extents.json").read_text())
    assert "2026-12-06 11:50" in outside(extents)  # cut at the right edge, as before layouts existed


def test_changing_layout_renders_the_chart_again_and_a_bad_one_is_named(tmp_path):
    board = board_with(tmp_path / "b", None)
    assert board.cli("build").returncode == 0
    before = board.chart("edge")["renders"]
    assert board.cli("build").returncode == 0
    assert board.chart("edge")["renders"] == before  # nothing changed: nothing rendered
    board.file.write_text(board.file.read_text() + 'layout = "none"\n')
    assert board.cli("build").returncode == 0
    assert board.chart("edge")["renders"] == before + 1
    board.file.write_text(board.file.read_text().replace('layout = "none"', 'layout = "loose"'))
    result = board.cli("build")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr
    line = next(x for x in result.stderr.splitlines() if "layout" in x)
    assert "plotboard.toml" in line and "edge" in line and "constrained, tight, none" in line and "'loose'" in line, line
