"""Zoom on demand on `run --serve` (issue 26, DESIGN.md "Zoom on demand and image history"):
GET /render/NAME.png?window=…&end=…[&width=…] drawn by the daemon's workers, with real
daemons, sockets and files; the plot records every render it makes in renders.jsonl."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

from conftest import chart, complete_png, fast_board, free_port, wait_for
from daemon_helpers import png_problem

PLOTS = '''
import json, os, time

HERE = os.path.dirname(__file__)

def z(fig, inputs, window=None, window_name=None, end=None, **params):
    with open(os.path.join(HERE, "renders.jsonl"), "a") as f:
        f.write(json.dumps({"window": window, "window_name": window_name, "end": end,
                            "width": round(fig.get_size_inches()[0] * fig.dpi)}) + "\\n")
    if window == 7777:
        raise ValueError("no data for\\nthis window")
    if window == 5555:  # held until the test lets it go
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(HERE, "release")) and time.time() < deadline:
            time.sleep(0.01)
    ax = fig.add_subplot()
    ax.plot([float(v) for path in inputs for v in open(path).read().split()] or [0])
'''


def zoom_board(root: Path, extra: str = ""):
    b = fast_board(root, chart("lat", "plots:z", "data/a.txt", 'windows = ["1h", "1d"]\nzoom = true\n' + extra),
                   chart("plain", "plots:z", "data/a.txt", 'windows = ["1h"]'), plots=PLOTS)
    b.data("data/a.txt", "1 2 3\n")
    return b


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def renders(b) -> list[dict]:
    path = b.root / "renders.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def custom(b) -> list[dict]:
    return [r for r in renders(b) if r["window_name"] == "custom"]


def start(daemons, b):
    port = free_port()
    d = daemons(b, "--serve", str(port))
    d.wait_state("lat", state="ok")
    d.wait_state("plain", state="ok")
    return d, port


def test_render_answers_200_png_400_404_and_500_leaving_the_board_alone(tmp_path, daemons):
    b = zoom_board(tmp_path / "b")
    d, port = start(daemons, b)
    published = {n: (b.output / n).read_bytes() for n in ("lat.png", "lat.1h.png", "lat.1d.png")}
    entry = d.state("lat")

    status, headers, body = get(port, "/render/lat.png?window=2h&end=1700000000")
    assert status == 200 and headers["content-type"] == "image/png", (status, headers, body[:200])
    assert png_problem(body) is None
    assert int.from_bytes(body[16:20], "big") == 80  # the chart's own width: 2 in × 40 dpi
    status, _, body = get(port, "/render/lat.png?window=1.5d&end=1700000000.25&width=300")
    assert status == 200 and int.from_bytes(body[16:20], "big") == 300
    assert int.from_bytes(body[20:24], "big") == 150  # the chart's aspect kept
    drawn = custom(b)
    assert [(r["window"], r["width"]) for r in drawn] == [(7200.0, 80), (129600.0, 300)], drawn
    step = 7200.0 / 80  # `end` rounded to one pixel's worth of time
    assert drawn[0]["end"] == round(1700000000 / step) * step
    assert abs(drawn[1]["end"] - 1700000000.25) <= 129600.0 / 300 / 2

    for path in ("/render/plain.png?window=1h&end=1", "/render/nope.png?window=1h&end=1",
                 "/render/lat.1d.png?window=1h&end=1", "/render/LAT.png?window=1h&end=1"):
        status, _, body = get(port, path)
        assert status == 404 and body.count(b"\n") == 1, (path, status, body)
    for query, words in [("window=11y&end=1", b"is not a duration"), ("window=3653d&end=1", b"over 10 years"),
                         ("window=1h&end=nan", b"not a finite number"), ("window=1h&end=inf", b"not a finite"),
                         ("window=1h&end=soon", b"not a number"), ("window=1h", b"missing parameter 'end'"),
                         ("end=1", b"missing parameter 'window'"), ("window=1h&window=2h&end=1", b"given twice"),
                         ("window=1h&end=1&width=4001", b"4001"), ("window=1h&end=1&width=x", b"whole number"),
                         ("window=0s&end=1", b"positive"), ("window=1h&end=1&colour=red", b"unknown parameter")]:
        status, headers, body = get(port, f"/render/lat.png?{query}")
        assert status == 400 and words in body and body.count(b"\n") == 1, (query, status, body)
    status, _, body = get(port, "/render/lat.png?window=3652d&end=1&width=4000")  # the most allowed
    assert status == 200 and int.from_bytes(body[16:20], "big") == 4000

    status, headers, body = get(port, "/render/lat.png?window=7777s&end=1700000000")
    assert status == 500 and body == b"ValueError: no data for this window\n", (status, body)
    assert {n: (b.output / n).read_bytes() for n in published} == published
    after = d.state("lat")
    assert (after["state"], after["error"], after["failures"], after["renders"], after["hash"]) == \
        (entry["state"], entry["error"], entry["failures"], entry["renders"], entry["hash"]), (entry, after)
    assert not [p for p in b.output.rglob("*") if "custom" in p.name or p.name.startswith(".")]
    assert d.alive()


def test_a_scheduled_render_of_a_zoomable_chart_still_publishes(tmp_path, daemons):
    """The published images stay the scheduled renders' (with `end` the render's start)."""
    b = zoom_board(tmp_path / "b")
    d, port = start(daemons, b)
    before = d.image("lat")
    assert get(port, "/render/lat.png?window=2h&end=1700000000")[0] == 200
    b.data("data/a.txt", "5 1 5 1\n")
    assert complete_png(b.output / "lat.png") is not None
    d.new_image("lat", before)
    assert d.state("lat")["state"] == "ok"
