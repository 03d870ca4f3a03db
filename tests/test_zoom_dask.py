"""Zoom on demand with `executor = "dask"` (issue 26): /render/ is drawn on the Dask cluster's
workers like any render, with a real distributed.LocalCluster (tests/test_dask.py's)."""

from __future__ import annotations

from conftest import free_port
from daemon_helpers import png_problem
from test_dask import cluster, make_board  # noqa: F401 - the cluster fixture
from test_zoom_serve import get

ZOOM = '\nwindows = ["1h"]\nzoom = true\n'
SEEN = '''
def seen(fig, inputs, window=None, window_name=None, end=None, **params):
    ax = fig.add_subplot()
    ax.plot([1, 2, 3])
    ax.set_title(f"{window_name} {window} {end}")
    if window == 7777:
        raise ValueError("no data for this window")
'''


def test_zoom_renders_on_the_dask_cluster(tmp_path, cluster, daemons):  # noqa: F811
    board = make_board(tmp_path / "board", [("lat", "line", ["data/a.txt"], {})], cluster.address)
    board.file.write_text(board.file.read_text().replace('plot = "plots:line"', 'plot = "plots:seen"') + ZOOM)
    (board.root / "plots.py").write_text((board.root / "plots.py").read_text() + SEEN)
    board.data("data/a.txt", "1 2 3")
    port = free_port()
    d = daemons(board, "--serve", str(port))
    d.wait_state("lat", state="ok")
    status, headers, body = get(port, "/render/lat.png?window=2h&end=1700000000&width=150")
    assert status == 200 and png_problem(body) is None, (status, headers, body[:300], d.log[-3000:])
    assert int.from_bytes(body[16:20], "big") == 150
    status, _, body = get(port, "/render/lat.png?window=2h&end=1700000000&width=150&scale=2")
    assert status == 200 and int.from_bytes(body[16:20], "big") == 300, (status, body[:300])  # scale went along
    status, _, body = get(port, "/render/lat.png?window=7777s&end=1700000000")
    assert status == 500 and body == b"ValueError: no data for this window\n", (status, body)
    assert d.state("lat")["state"] == "ok"
