"""Limits (issue 12, item 6): memory per render (`max_memory`, locally and on Dask), pixels per
image and the shortest interval, the last two refused at load naming the key."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import Board

from renderer.board.durations import parse_size
from renderer.text import format_size
from renderer.render.jobs import RenderFailure, RenderJob, RenderOutput
from renderer.executors.pool import RenderPool

PLOTS = '''
def line(fig, inputs, **params):
    fig.add_subplot().plot([1, 3, 2])

def hog(fig, inputs, **params):
    held = bytearray(4 * 2**30)  # 4 GiB
    line(fig, inputs)
'''


def job(root: Path, plot: str) -> RenderJob:
    return RenderJob(name=plot, plot=f"plots:{plot}", plot_file=str(root / "plots.py"), root=str(root), inputs=(),
                     size=(2.0, 1.0), dpi=40, hidpi=False, formats=("png",), png_compression=1, theme="light")


@pytest.fixture
def plots(tmp_path: Path) -> Path:
    (tmp_path / "plots.py").write_text(PLOTS)
    return tmp_path


def test_sizes_read_and_write_in_binary_units():
    assert [parse_size(s) for s in ("512MiB", "2GiB", "1.5GiB", " 64 KiB ")] == [2**29, 2**31, 3 * 2**29, 2**16]
    assert [format_size(n) for n in (2**30, 2**29, 3 * 2**29)] == ["1GiB", "512MiB", "1.5GiB"]
    for bad in ("1GB", "lots", 5, "0MiB", "-1GiB"):
        with pytest.raises(ValueError):
            parse_size(bad)


HOG_BOARD = """
[board]
workers = 2
render_timeout = "60s"

[defaults]
size = [2, 1]
dpi = 40
hidpi = false

[[charts]]
name = "hog"
plot = "plots:hog"
max_memory = "1GiB"

[[charts]]
name = "hog-default"
plot = "plots:hog"

[[charts]]
name = "a"
plot = "plots:line"

[[charts]]
name = "b"
plot = "plots:line"
"""


def test_a_render_over_max_memory_fails_alone_naming_memory(tmp_path):
    # Stopped by the limit, the render fails with a MemoryError naming it; without one it would
    # succeed, be killed (WorkerDied) or run into render_timeout (RenderTimeout).
    board = Board(tmp_path / "b").write(HOG_BOARD, plots=PLOTS)
    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    states = {c["name"]: c for c in board.status()["charts"]}
    assert states["a"]["state"] == states["b"]["state"] == "ok"
    assert states["hog"]["error"].startswith("MemoryError: the render needed more memory than max_memory = 1GiB")
    assert states["hog-default"]["error"].startswith("MemoryError: the render needed more memory than max_memory = 1GiB")
    assert "Traceback" not in result.stderr


def test_a_dask_render_process_enforces_max_memory(plots):
    from renderer.executors.dask_remote import _close_idle, pack, run_remote

    try:
        j = replace(job(plots, "hog"), max_memory=2**30)
        outcome = pickle.loads(run_remote(pickle.dumps(pack(j)), j.name, 60.0))
        assert isinstance(outcome, RenderFailure)
        assert outcome.error.startswith("MemoryError: the render needed more memory than max_memory = 1GiB")
        assert isinstance(pickle.loads(run_remote(pickle.dumps(pack(job(plots, "line"))), "line", 60.0)), RenderOutput)
    finally:
        _close_idle()


@pytest.mark.parametrize("toml, problem", [
    ('[[charts]]\nname = "a"\nplot = "plots:line"\nmax_memory = "lots"\n',
     "charts[0] (a).max_memory: expected a size like '512MiB' or '2GiB', got 'lots'"),
    ('[defaults]\nmax_memory = "1MiB"\n[[charts]]\nname = "a"\nplot = "plots:line"\n',
     "defaults.max_memory: expected at least 256MiB"),
    ('[[charts]]\nname = "a"\nplot = "plots:line"\nevery = "1ms"\n',
     "charts[0] (a).every: expected at least 100ms, got '1ms'"),
    ('[board]\nrefresh = "50ms"\n[[charts]]\nname = "a"\nplot = "plots:line"\n',
     "board.refresh: expected at least 100ms, got '50ms'"),
    ('[[charts]]\nname = "big"\nplot = "plots:line"\nsize = [50, 50]\ndpi = 200\nhidpi = false\n',
     "charts[0] (big).size: the image would be 10000 × 10000 = 100,000,000 pixels"),
    ('[defaults]\nsize = [41, 25]\ndpi = 100\n[[charts]]\nname = "a"\nplot = "plots:line"\n',
     "defaults.size: the @2x image would be 8200 × 5000 = 41,000,000 pixels"),
])
def test_limits_are_checked_at_load_naming_the_key(tmp_path, toml, problem):
    board = Board(tmp_path / "b").write(toml, plots=PLOTS)
    result = board.cli("build")
    assert result.returncode == 2 and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not board.output.exists()


def test_the_largest_image_allowed_renders_within_the_default_memory_limit(plots):
    # 40 Mpx exactly: @2x of 40 x 25 in at 100 dpi would be 8000 x 5000; here the 1x image is.
    big = replace(job(plots, "line"), size=(80.0, 50.0), dpi=100, max_memory=2**30)
    with RenderPool(1, 120.0) as pool:
        outcome = pool.submit(big).result(timeout=180)
    assert isinstance(outcome, RenderOutput), outcome
