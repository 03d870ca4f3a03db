"""What `GET /render/NAME.png?window=DURATION&end=EPOCH[&width=PX][&scale=1|2]` asks (DESIGN.md
"Zoom on demand and image history"): the request checked against the board, each mistake a one-line
reason (400), an unknown or non-zoomable chart a 404. The daemon's side (queue, single flight,
cache) is renderer.daemon.zoom."""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus

from renderer.board.durations import DURATION_RE, UNITS
from renderer.board.model import Board, Chart
from renderer.render.limits import PIXEL_LIMIT

PATH_RE = re.compile(r"/render/([a-z0-9][a-z0-9_-]*)\.png\Z")
MAX_WINDOW = 10 * 365.25 * 86400  # seconds: ten years
MAX_WIDTH = 4000  # pixels
MIN_WIDTH = 10
MAX_END = 1e11  # |end| in epoch seconds (year 5138): beyond it a float's pixel steps lose precision
PARAMS = ("window", "end", "width", "scale")
SCALES = {"1": 1, "2": 2}  # `scale`: the image at 1x, or at 2x as the chart's NAME@2x.png


@dataclass(frozen=True)
class Ask:
    """A checked request: the chart (its first window's), the window in seconds, `end` rounded
    to one pixel's worth of time of the image drawn (window / (width × scale)), the figure's
    size in 1x pixels, and the scale (the image is scale × that size, drawn at scale × dpi)."""

    chart: Chart
    window: float
    end: float
    width: int
    height: int
    scale: int = 1


class Refused(Exception):
    """A request answered with `status` and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse(board: Board, path: str, query: str) -> Ask:
    """The request's chart and parameters; Refused(404 or 400, reason) when it cannot be drawn."""
    m = PATH_RE.match(path)
    try:
        chart = board.chart(m.group(1)) if m else None
    except KeyError:
        chart = None
    if chart is None or chart.window_of is not None or not chart.zoom:
        what = m.group(1) if m else path
        raise Refused(HTTPStatus.NOT_FOUND, f"no zoomable chart {what!r} on this board (zoom = true needs windows)")
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query),
                                       max_num_fields=10, errors="strict")
    except (ValueError, UnicodeError) as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, f"cannot read the query: {exc}") from None
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in PARAMS:
            raise Refused(HTTPStatus.BAD_REQUEST,
                          f"unknown parameter {key[:40]!r} (expected window, end, width and scale)")
        if key in values:
            raise Refused(HTTPStatus.BAD_REQUEST, f"parameter {key!r} given twice")
        values[key] = value
    for key in ("window", "end"):
        if key not in values:
            raise Refused(HTTPStatus.BAD_REQUEST, f"missing parameter {key!r} (/render/NAME.png?window=1h&end=EPOCH)")
    window = _window(values["window"])
    end = _number("end", values["end"])
    if abs(end) > MAX_END:
        raise Refused(HTTPStatus.BAD_REQUEST, f"end {values['end'][:40]!r} is not a time (epoch seconds) "
                                              f"within ±{MAX_END:g}")
    own_w, own_h = chart.pixels
    width = own_w if "width" not in values else _width(values["width"])
    height = max(MIN_WIDTH, round(width * own_h / own_w))
    scale = SCALES.get(values.get("scale", "1"))
    if scale is None:
        raise Refused(HTTPStatus.BAD_REQUEST, f"scale {values['scale'][:40]!r} is not 1 or 2")
    if width * scale * height * scale > PIXEL_LIMIT:
        what = f"width {width}" + (f" at scale {scale}" if scale != 1 else "")
        raise Refused(HTTPStatus.BAD_REQUEST, f"{what} makes an image of {width * scale} × {height * scale} "
                                              f"pixels, over the limit of {PIXEL_LIMIT:,}")
    step = window / (width * scale)  # one pixel's worth of time: ends this close give one picture
    return Ask(chart, window, round(end / step) * step, width, height, scale)


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Refused(HTTPStatus.BAD_REQUEST, f"{key} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise Refused(HTTPStatus.BAD_REQUEST, f"{key} {text[:40]!r} is not a finite number")
    return value


def _window(text: str) -> float:
    m = DURATION_RE.match(text)
    seconds = float(m.group(1)) * UNITS[m.group(2)] if m else None
    if seconds is None:
        try:
            seconds = float(text)
        except ValueError:
            raise Refused(HTTPStatus.BAD_REQUEST, f"window {text[:40]!r} is not a duration like '90m', '1d' "
                                                  f"or a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise Refused(HTTPStatus.BAD_REQUEST, f"window {text[:40]!r} is not a positive duration")
    if seconds > MAX_WINDOW:
        raise Refused(HTTPStatus.BAD_REQUEST, f"window {text[:40]!r} is over 10 years")
    return seconds


def _width(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text):
        raise Refused(HTTPStatus.BAD_REQUEST, f"width {text[:40]!r} is not a whole number of pixels")
    width = int(text)
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise Refused(HTTPStatus.BAD_REQUEST, f"width {width} is not within {MIN_WIDTH} to {MAX_WIDTH} pixels")
    return width
