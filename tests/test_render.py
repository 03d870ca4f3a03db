"""The render step: plotboard's PNGs show exactly what matplotlib's own savefig would."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from pathlib import Path

import matplotlib
import numpy as np
import PIL.Image
import pytest
from matplotlib.figure import Figure

from conftest import png_problem
from renderer.render import png
from renderer.render.jobs import RenderJob
from renderer.render.draw import BASE_RC, THEME_STYLES, load_plot_function, render

PLOTS = '''
import numpy as np

def line(fig, inputs, **params):
    values = [float(v) for v in inputs[0].read_text().split()]
    ax = fig.add_subplot()
    ax.plot(values, linewidth=0.8)
    ax.set_title(params.get("title", "Line"))
    ax.set_xlabel("t")
    ax.grid(True)

def heat(fig, inputs, **params):
    ax = fig.add_subplot()
    image = ax.imshow(np.random.default_rng(1).normal(size=(40, 60)).cumsum(0), aspect="auto")
    fig.colorbar(image)

def see_through(fig, inputs, **params):
    fig.patch.set_alpha(0.0)
    ax = fig.add_subplot()
    ax.patch.set_alpha(0.5)
    ax.plot([1, 3, 2])
'''


@pytest.fixture
def plots(tmp_path: Path) -> Path:
    (tmp_path / "plots.py").write_text(PLOTS)
    data = tmp_path / "data.txt"
    data.write_text(" ".join(str(v) for v in np.random.default_rng(0).normal(size=2000).cumsum()))
    return tmp_path


def job(root: Path, plot: str = "plots:line", *, theme: str = "light", size=(6.0, 3.0), dpi: int = 80,
        hidpi: bool = False, level: int = 3, **params) -> RenderJob:
    return RenderJob(name="c", plot=plot, plot_file=str(root / "plots.py"), root=str(root),
                     inputs=(str(root / "data.txt"),), size=size, dpi=dpi, hidpi=hidpi, formats=("png",),
                     png_compression=level, theme=theme, params=params)


def matplotlib_savefig(j: RenderJob, dpi: int) -> bytes:
    """The same chart drawn and saved the plain way: a fresh Figure and matplotlib's savefig. At
    another dpi than the chart's, the layout is the one matplotlib made at the chart's dpi (the
    @2x image is the 1x image's layout at twice the pixels)."""
    with matplotlib.rc_context(BASE_RC), matplotlib.style.context(THEME_STYLES[j.theme]):
        fig = Figure(figsize=j.size, dpi=j.dpi, layout=None if j.layout == "none" else j.layout)
        load_plot_function(j)(fig, [Path(p) for p in j.inputs], **j.params)
        if dpi != j.dpi:
            fig.savefig(io.BytesIO(), format="png", dpi=j.dpi)
            if j.layout != "none":
                fig.set_layout_engine("none")  # keeps the positions the layout engine gave
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGBA"))


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("plot", ["plots:line", "plots:heat"])
@pytest.mark.parametrize("layout", ["constrained", "none"])
def test_pixels_equal_matplotlibs_own_savefig_at_1x_and_2x(plots, theme, plot, layout):
    j = dataclasses.replace(job(plots, plot, theme=theme, hidpi=True), layout=layout)
    out = render(j)
    assert np.array_equal(pixels(out.files["c.png"]), pixels(matplotlib_savefig(j, j.dpi)))
    assert np.array_equal(pixels(out.files["c@2x.png"]), pixels(matplotlib_savefig(j, 2 * j.dpi)))


def test_opaque_chart_is_written_as_rgb_with_matplotlibs_metadata(plots):
    image = PIL.Image.open(io.BytesIO(render(job(plots)).files["c.png"]))
    assert image.mode == "RGB"
    assert image.size == (480, 240)
    assert image.info["Software"].startswith("Matplotlib version")
    assert round(image.info["dpi"][0]) == 80


def test_see_through_figure_keeps_its_alpha_channel(plots):
    j = job(plots, "plots:see_through")
    data = render(j).files["c.png"]
    assert PIL.Image.open(io.BytesIO(data)).mode == "RGBA"
    ours, theirs = pixels(data), pixels(matplotlib_savefig(j, j.dpi))
    assert ours[..., 3].min() < 255
    assert np.array_equal(ours, theirs)


def test_every_chunk_is_well_formed(plots):
    data = render(job(plots)).files["c.png"]
    assert png_problem(data) is None
    PIL.Image.open(io.BytesIO(data)).verify()


def test_same_chart_gives_same_bytes_whatever_was_drawn_in_between(plots):
    """Renderers are kept between figures: nothing of one chart may show in the next."""
    first = render(job(plots)).files["c.png"]
    render(job(plots, "plots:heat", theme="dark"))
    render(job(plots, title="another title with other glyphs"))
    render(job(plots, size=(3.0, 2.0), dpi=50))
    assert render(job(plots)).files["c.png"] == first


def test_compression_level_changes_size_not_pixels(plots):
    fast, small = (render(job(plots, level=level)).files["c.png"] for level in (1, 9))
    assert len(small) < len(fast)
    assert np.array_equal(pixels(fast), pixels(small))


def test_encoder_round_trips_random_pixels_of_both_kinds():
    rng = np.random.default_rng(7)
    for alpha in (255, None):
        rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
        if alpha is not None:
            rgba[..., 3] = alpha
        data = png.encode(rgba, level=6, dpi=100, text={"Title": "x"})
        decoded = np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGBA"))
        assert np.array_equal(decoded, rgba)
        colour_type = struct.unpack(">IIBB", data[16:26])[3]
        assert colour_type == (png.RGB if alpha == 255 else png.RGBA)
        # IDAT holds one Up-filtered row per image row.
        idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
        raw = zlib.decompress(idat)
        row = 1 + 53 * (3 if alpha == 255 else 4)
        assert len(raw) == 37 * row and set(raw[::row]) == {png.UP}
