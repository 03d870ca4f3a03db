"""The renderer every chart is drawn with keeps each font's line metrics (renderer.render.fonts):
the same values matplotlib's Text reads from the font, so the same pixels, under whatever font
settings a plot or a theme sets between renders in the same worker."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

from renderer.render import draw, fonts

FONTS = [{"family": "sans-serif"}, {"family": "DejaVu Serif", "weight": "bold"},
         {"family": "STIXGeneral", "style": "italic"}, {"family": "cmr10"}, {"family": "monospace"}]


def texts_figure(canvas: type, layout: str | None) -> np.ndarray:
    """A figure full of texts whose height comes from the line metrics: several fonts and
    sizes, lines of two and three, a title, tick and axis labels; its pixels."""
    fig = Figure(figsize=(4, 3), dpi=90, layout=layout)
    canvas(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1e6], [3, 1])
    ax.set_title("two\nlines", fontfamily="STIXGeneral", fontsize=15)
    ax.set_xlabel("x label\nsecond", fontfamily="DejaVu Serif")
    ax.set_ylabel("y", fontsize=7)
    for i, font in enumerate(FONTS):
        fig.text(0.1 + 0.15 * i, 0.5, "Ag\npq\nXy", fontproperties=FontProperties(size=6 + 3 * i, **font),
                 bbox={"facecolor": "none"})
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


@pytest.mark.parametrize("rc", [{}, {"font.sans-serif": ["STIXGeneral"], "font.size": 13},
                                {"font.family": "serif", "font.serif": ["cmr10"],
                                 "axes.formatter.use_mathtext": True}])
@pytest.mark.parametrize("layout", [None, "constrained"])
def test_the_same_pixels_as_matplotlib_s_own_text_metrics(rc, layout):
    fonts._metrics.clear()
    draw._renderers.clear()
    for _ in range(2):  # the second time from the kept metrics
        with matplotlib.rc_context(rc):
            kept = texts_figure(draw.WarmCanvas, layout)
            plain = texts_figure(FigureCanvasAgg, layout)
        assert np.array_equal(kept, plain)
    assert fonts._metrics, "the hook was never asked: matplotlib no longer calls _get_font_height_metrics"


def test_kept_metrics_follow_the_font_settings_and_the_dpi():
    """Each call gives what the font's tables say now: a kept value is never another font's."""
    fonts._metrics.clear()
    renderer, renderer2x = fonts.WarmRenderer(10, 10, 100), fonts.WarmRenderer(10, 10, 200)
    prop = FontProperties(family="sans-serif", size=10)
    sans = renderer._get_font_height_metrics(prop)
    with matplotlib.rc_context({"font.sans-serif": ["STIXGeneral"]}):
        stix = renderer._get_font_height_metrics(prop)
        assert stix == fonts.line_metrics(prop, 100)
    assert stix != sans
    assert renderer._get_font_height_metrics(prop) == sans == fonts.line_metrics(prop, 100)
    assert renderer2x._get_font_height_metrics(prop) == pytest.approx(tuple(2 * v for v in sans))


def test_line_metrics_are_the_ones_text_lays_out_with():
    """matplotlib's Text, asked for its layout by a plain renderer, makes a one-line text exactly
    ascent + descent tall with the values line_metrics reads (when the glyphs are no taller)."""
    fig = Figure(dpi=100)
    renderer = FigureCanvasAgg(fig).get_renderer()
    for font in FONTS:
        prop = FontProperties(size=11, **font)
        text = Text(0, 0, "ace", fontproperties=prop, figure=fig)
        ascent, descent, _gap = fonts.line_metrics(prop, 100)
        assert text.get_window_extent(renderer).height == pytest.approx(ascent + descent)
