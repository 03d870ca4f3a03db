"""PNG encoding of a drawn chart: every row Up-filtered, then one zlib stream.

Pillow, which matplotlib's own print_png calls, tries all five PNG filters on every row and
keeps the best; on a chart (flat areas, thin lines) that search costs more than the
compression itself. A fixed Up filter done in numpy is about 2x as fast at levels 1-6
(1.4x at 9) and, on charts, 9-12% smaller (see BENCHMARKS.md, "PNG encoding").
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
UP = 2  # PNG filter type: each byte minus the byte above it
RGB, RGBA = 2, 6  # PNG colour types


def encode(rgba: np.ndarray, *, level: int, dpi: float, text: dict[str, str] | None = None) -> bytes:
    """PNG of an (height, width, 4) uint8 image: RGB when every pixel is opaque, else RGBA."""
    height, width, _ = rgba.shape
    opaque = bool(rgba[..., 3].min() == 255)
    rows = (rgba[..., :3] if opaque else rgba).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = UP
    filtered[0, 1:] = rows[0]  # the row above the first one counts as zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: modulo 256, as PNG wants

    per_metre = int(dpi / 0.0254 + 0.5)
    parts = [
        SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, RGB if opaque else RGBA, 0, 0, 0)),
        _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
    ]
    for key, value in (text or {}).items():
        parts.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace")))
    parts.append(_chunk(b"IDAT", zlib.compress(filtered.data, level)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
