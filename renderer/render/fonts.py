"""The Agg renderer every chart is drawn with: matplotlib's, with a font's line metrics kept.

matplotlib (3.11) lays out every text it measures or draws with its font's ascent, descent and
line gap, which it reads from the font's tables each time: two table reads and a font lookup
per text, about 30 µs, some 150 times per render of the reference chart (tick labels are
measured over and over by the layout engine and the draw). Those values depend only on the
font properties, the font settings in rcParams, the fonts known and the dpi, so they are kept
here under all of them, through the hook matplotlib asks a renderer for them
(`_get_font_height_metrics`, as its PDF and PS renderers have). Same values, so the same pixels
(tests/test_render_fonts.py compares both ways); 5-9% of a retained render (BENCHMARKS.md,
"Retained figures"). A matplotlib without the hook never asks: the same pixels, without the gain.
"""

from __future__ import annotations

import os

import matplotlib
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties, fontManager, get_font

FONT_RC = tuple(f"font.{key}" for key in ("family", "style", "variant", "weight", "stretch", "size", "serif",
                                          "sans-serif", "cursive", "fantasy", "monospace"))
KEPT_METRICS = 1024  # font settings remembered at most (a board uses a handful)

_metrics: dict[tuple, tuple[float | None, float | None, float | None]] = {}


class WarmRenderer(RendererAgg):
    """RendererAgg that remembers each font's line metrics (see the module's docstring)."""

    def _get_font_height_metrics(self, prop: FontProperties) -> tuple[float | None, float | None, float | None]:
        rc = matplotlib.rcParams
        key = (prop, tuple(_hashable(rc[name]) for name in FONT_RC), self.dpi, len(fontManager.ttflist),
               os.environ.get("MPL_IGNORE_SYSTEM_FONTS"))
        found = _metrics.get(key)
        if found is None:
            if len(_metrics) >= KEPT_METRICS:
                _metrics.clear()
            found = _metrics[key] = line_metrics(prop, self.dpi)
        return found


def line_metrics(prop: FontProperties, dpi: float) -> tuple[float | None, float | None, float | None]:
    """(ascent, descent, line gap) in pixels, read from the font as matplotlib's Text does;
    (None, None, None) when the font has neither table, for matplotlib's own fallback."""
    font = get_font(fontManager._find_fonts_by_props(prop))
    for table_name, gap_key, ascent_key, descent_key in (
            ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
            ("hhea", "lineGap", "ascent", "descent")):
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() * dpi / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[gap_key] * scale
    return None, None, None


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value
