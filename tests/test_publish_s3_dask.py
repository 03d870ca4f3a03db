"""`[publish]` with `executor = "dask"`: the daemon publishes what the cluster rendered, unchanged."""

from __future__ import annotations

import pytest

from conftest import wait_for
from daemon_helpers import cli_env
from moto_store import Store, env
from test_dask import cluster, make_board  # noqa: F401 - cluster: a LocalCluster in a helper process
from test_publish_s3_daemon import in_line


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def test_with_executor_dask_the_daemon_publishes_unchanged(tmp_path, store, cluster, daemons):
    b = make_board(tmp_path / "board", [("a", "line", ["data/a.txt"], {})], cluster.address)
    b.file.write_text(b.file.read_text() + store.toml())
    b.data("data/a.txt", "1 2 3")
    d = daemons(b, env=cli_env(**env()))
    wait_for(lambda: d.alive() and "a.png" in store.keys() and in_line(store, b.output), 60, "the mirror")
    before = d.image("a")
    b.data("data/a.txt", "3 1 2")
    d.new_image("a", before)
    wait_for(lambda: d.alive() and in_line(store, b.output), 60, "the new image in the store")
    assert d.stop() == 0
