"""Renders done on Dask workers are counted by the daemon: a real LocalCluster (test_dask's
fixture) renders, and `/metrics` of the real `plotboard run --serve` counts each render with the
time its worker measured."""

from __future__ import annotations

import os

import pytest

from conftest import free_port, wait_for

if os.environ.get("CI") != "true":
    pytest.importorskip("distributed")

from test_dask import cluster, make_board  # noqa: E402,F401 - the fixture is used by name
from test_metrics import last_success, renders, scrape  # noqa: E402

SLOW = '''
import time

def slow(fig, inputs, **params):
    time.sleep(0.3)  # measured on the worker: the render's own duration
    fig.add_subplot().plot([1, 2, 3])

def boom(fig, inputs, **params):
    raise ValueError("plot exploded")
'''


def test_renders_on_dask_workers_are_counted_with_their_duration(tmp_path, cluster, daemons):
    board = make_board(tmp_path / "board", [("a", "line", ["data/a.txt"], {}), ("b", "line", ["data/b.txt"], {})],
                       cluster.address)
    board.write(board.file.read_text().replace('plot = "plots:line"\ninputs = ["data/b.txt"]',
                                               'plot = "slow:slow"\ninputs = ["data/b.txt"]')
                + '\n[[charts]]\nname = "c"\ntitle = "c"\nplot = "slow:boom"\n',
                (tmp_path / "board" / "plots.py").read_text())
    (board.root / "slow.py").write_text(SLOW)
    board.data("data/a.txt", "1 2 3")
    board.data("data/b.txt", "3 2 1")
    port = free_port()
    d = daemons(board, "--serve", str(port))
    d.wait_state("b", state="ok")
    d.wait_state("c", state="error")
    values = wait_for(lambda: (v := scrape(port)) and renders(v, "ok") >= 2 and renders(v, "failed") >= 1 and v,
                      60, "the renders to be counted")
    assert values[("plotboard_render_duration_seconds_count", ())] == renders(values, "ok") + renders(values, "failed")
    assert values[("plotboard_render_duration_seconds_sum", ())] >= 0.3
    slow_or_more = (values[("plotboard_render_duration_seconds_count", ())]
                    - values[("plotboard_render_duration_seconds_bucket", (("le", "0.25"),))])
    assert slow_or_more >= 1, values  # b's render, as its worker timed it
    assert set(last_success(values)) == {"a", "b"}
    assert 'executor = "dask"' in board.file.read_text() and cluster.address in board.file.read_text()
    assert d.stop() == 0
