"""Zoom on demand's options (issue 26): `zoom = true` needs `windows`, `[board] zoom_cache` is a
size, and a zoomable chart's plot receives `end` (epoch seconds, the render's start) besides
`window` and `window_name` in every scheduled render; with the real CLI."""

from __future__ import annotations

import json
import time

from conftest import chart, fast_board

PLOTS = '''
import json, os

def seen(fig, inputs, **kw):
    with open(os.path.join(os.path.dirname(__file__), "seen.jsonl"), "a") as f:
        f.write(json.dumps(kw) + "\\n")
    ax = fig.add_subplot()
    ax.plot([1, 2, 3])
'''


def test_a_zoomable_chart_s_plot_receives_end_in_every_window(tmp_path):
    b = fast_board(tmp_path / "b", chart("lat", "plots:seen", extra='windows = ["1h", "1d"]\nzoom = true'),
                   chart("plain", "plots:seen", extra='windows = ["1h"]'), plots=PLOTS)
    before = time.time()
    result = b.cli("build")
    after = time.time()
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (b.root / "seen.jsonl").read_text().splitlines()]
    zoomed = sorted((c for c in calls if "end" in c), key=lambda c: c["window"])
    assert [(c["window"], c["window_name"]) for c in zoomed] == [(3600.0, "1h"), (86400.0, "1d")], calls
    for c in zoomed:
        assert isinstance(c["end"], float) and before <= c["end"] <= after, (c, before, after)
    plain = [c for c in calls if "end" not in c]
    assert [(c["window"], c["window_name"]) for c in plain] == [(3600.0, "1h")], calls


def test_zoom_without_windows_is_a_one_line_error_naming_the_chart_and_key(tmp_path):
    b = fast_board(tmp_path / "b", chart("lat", "plots:seen", extra="zoom = true"), plots=PLOTS)
    result = b.cli("build")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "charts[0] (lat).zoom" in lines[0] and "windows" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not b.output.exists()


def test_zoom_must_be_a_boolean_and_zoom_cache_a_size(tmp_path):
    b = fast_board(tmp_path / "b", chart("lat", "plots:seen", extra='windows = ["1h"]\nzoom = "yes"'), plots=PLOTS)
    b.file.write_text(b.file.read_text().replace('title = "Daemon board"', 'title = "D"\nzoom_cache = "lots"'))
    result = b.cli("build")
    assert result.returncode == 2, result.stderr
    assert "board.zoom_cache" in result.stderr and "charts[0] (lat).zoom" in result.stderr, result.stderr
    b.file.write_text(b.file.read_text().replace('zoom_cache = "lots"', 'zoom_cache = "1KiB"'))
    result = b.cli("build")
    assert result.returncode == 2 and "board.zoom_cache: expected at least 1MiB" in result.stderr, result.stderr


def test_zoom_cache_and_zoom_load_into_the_board(tmp_path):
    from renderer.board.config import load_board

    b = fast_board(tmp_path / "b", chart("lat", "plots:seen", extra='windows = ["1h", "1d"]\nzoom = true'),
                   plots=PLOTS)
    board = load_board(b.file)
    assert board.zoom_cache == 256 * 1024 * 1024
    assert all(c.zoom for c in board.charts)
    b.file.write_text(b.file.read_text().replace('title = "Daemon board"', 'title = "D"\nzoom_cache = "2GiB"'))
    assert load_board(b.file).zoom_cache == 2 * 1024 ** 3
