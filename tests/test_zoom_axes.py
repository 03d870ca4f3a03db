"""Each render records where its first axes sits in the image and the x range it shows (issue 26:
the page turns a drag across the image into a time range): a zoomable chart's status.json entry gains
`"axes": {"box": [left, top, right, bottom], "x": [from, to] | null}`, box as fractions of the image
(origin top-left), x in epoch seconds when the x axis holds dates, null otherwise."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from PIL import Image
from conftest import Board, chart, fast_board

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
T1 = dt.datetime(2026, 12, 6, 18, 30, tzinfo=dt.timezone.utc)

PLOTS = '''
import datetime as dt

T0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
T1 = dt.datetime(2026, 12, 6, 18, 30, tzinfo=dt.timezone.utc)
RED = (1.0, 0.0, 0.0)


def placed(fig, inputs, **params):
    """Axes placed by hand, its face red, dates across: the box and range are known."""
    ax = fig.add_axes([0.1, 0.25, 0.7, 0.55], facecolor=RED)
    ax.plot([T0, T1], [1, 2], color="red")
    ax.set_xlim(T0, T1)
    for s in ax.spines.values():
        s.set_visible(False)


def laid_out(fig, inputs, window=None, window_name=None, end=None, **params):
    """Constrained layout decides where the axes goes; dates on x, as numpy datetime64."""
    import numpy as np
    ax = fig.add_subplot(facecolor=RED)
    t = np.array(["2026-12-06T00:00", "2026-12-07T00:00"], dtype="datetime64[s]")
    ax.plot(t, [3, 4], color="red")
    ax.set_title("a title to move the axes down")
    ax.set_ylabel("some label")
    for s in ax.spines.values():
        s.set_visible(False)


def numbers(fig, inputs, **params):
    ax = fig.add_subplot()
    ax.plot([0, 10], [1, 2])


def words(fig, inputs, **params):
    fig.text(0.5, 0.5, "no axes at all")
'''


ZOOM = 'windows = ["1d"]\nzoom = true'


def red_box(png: Path) -> tuple[int, int, int, int]:
    """The pure red rectangle's pixel edges in the image: left, top, right, bottom (exclusive)."""
    px = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (px[..., 0] == 255) & (px[..., 1] == 0) & (px[..., 2] == 0)
    rows, cols = np.nonzero(red.any(axis=1))[0], np.nonzero(red.any(axis=0))[0]
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1


def assert_box_matches(axes: dict, png: Path) -> None:
    width, height = Image.open(png).size
    left, top, right, bottom = axes["box"]
    found = red_box(png)
    recorded = (left * width, top * height, right * width, bottom * height)
    assert all(abs(a - b) <= 1 for a, b in zip(recorded, found)), (recorded, found)


def test_each_render_records_its_axes_box_and_date_range(tmp_path):
    b: Board = fast_board(
        tmp_path,
        chart("placed", "plots:placed", extra=f'layout = "none"\nsize = [8, 4]\ndpi = 100\nhidpi = true\n{ZOOM}'),
        chart("laid", "plots:laid_out", extra='size = [6, 3]\ndpi = 80\nwindows = ["1d", "7d"]\nzoom = true'),
        chart("numbers", "plots:numbers", extra=ZOOM),
        chart("words", "plots:words", extra=ZOOM),
        chart("plain", "plots:numbers"),
        plots=PLOTS)
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    status = b.status()
    placed = b.chart("placed")
    assert placed["axes"]["box"] == [0.1, 0.2, 0.8, 0.75]
    assert placed["axes"]["x"] == [T0.timestamp(), T1.timestamp()]
    assert_box_matches(placed["axes"], b.output / "placed.png")
    assert_box_matches(placed["axes"], b.output / "placed@2x.png")  # fractions: the same at any dpi

    laid = b.chart("laid")  # each window its own, the chart's own its first window's
    start = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc).timestamp()
    for entry, png in [(laid, "laid.png"), *((w, w["image"]) for w in laid["windows"])]:
        axes = entry["axes"]
        assert_box_matches(axes, b.output / png)
        lo, hi = axes["x"]  # matplotlib's margins: a little either side of the data
        assert lo < start < start + 86400 < hi < start + 86400 * 1.2 and start - lo < 86400 * 0.2
    assert 0.05 < laid["axes"]["box"][1] < 0.3  # below the title: constrained layout moved it

    assert b.chart("numbers")["axes"]["x"] is None  # not dates: no range, the page offers no drag
    assert 0 < b.chart("numbers")["axes"]["box"][0] < 0.2
    assert "axes" not in b.chart("words")
    assert "axes" not in b.chart("plain")  # not zoomable: nothing to drag, the manifest stays as it was
    # the split manifest carries the same entries
    group = json.loads((b.output / "status" / "ungrouped.json").read_text())
    assert [c.get("axes") for c in group["charts"]] == [c.get("axes") for c in status["charts"]]
    # and the record survives a build with nothing to do
    again = b.cli("build")
    assert again.returncode == 0 and b.chart("placed")["axes"] == placed["axes"]


def test_a_record_s_axes_are_checked_when_loaded():
    """.plotboard/state.json of any content: axes of another shape make the record invalid (dropped
    with one warning, as every field's check does), never a crash or a bad manifest."""
    from renderer.store.record_check import check_record

    good = {"box": [0.1, 0.05, 0.95, 0.9], "x": [1796558400.0, 1796581800.5]}
    assert check_record("a", {"axes": good})["axes"] == good
    assert check_record("a", {"axes": {"box": [0, 0, 1, 1], "x": None}})["axes"]["x"] is None
    assert check_record("a", {"axes": None})["axes"] is None
    for bad in ({"box": [0, 0, 1]}, {"box": [0, 0, 1, 1]}, {"box": [0, 0, 1, "1"], "x": None},
                {"box": [0, 0, 1, float("nan")], "x": None}, {"box": [0, 0, 1, 1], "x": [1]},
                {"box": [0, 0, 1, 1], "x": [0, 1e300]}, {"box": [0, 0, 1, 1], "x": None, "more": 1},
                {"box": [True, 0, 1, 1], "x": None}, [0, 0, 1, 1], "axes"):
        problem = check_record("a", {"axes": bad})
        assert isinstance(problem, str) and problem.startswith("a.axes: expected"), (bad, problem)
