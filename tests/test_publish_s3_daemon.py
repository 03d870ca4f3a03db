"""`plotboard run` with `[publish]`: the daemon mirrors the output folder to a real S3 API
(moto's server mode on 127.0.0.1) from a thread of its own. A reader polling the bucket under
continuous re-renders, with charts coming and going, never finds a manifest naming a missing
image; a removed chart's keys go, a foreign key stays; a store that stops turns status.json's
`publish` to error (plotboard status says so) while the local board carries on, and it
catches up by itself once the store answers again; a starting run puts right what was changed
in the store meanwhile."""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import FAST, chart, cli, wait_for
from daemon_helpers import cli_env
from moto_store import BUCKET, Store, env, mirrored

CHANGING = '''
import random

def noise(fig, inputs, **params):
    ax = fig.add_subplot()
    ax.plot([random.random() for _ in range(20)])
'''

BOARD = FAST.format(timeout="20s") + chart("a", "plots:noise", extra='every = "300ms"') + chart(
    "f-{match}", "plots:noise", "{path}", 'foreach = "data/f-*.txt"\nevery = "300ms"')


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def s3_board(tmp_path, store: Store):
    from conftest import Board

    return Board(tmp_path / "b").write(BOARD + store.toml(), plots=CHANGING)


def in_line(store: Store, output) -> bool:
    """Whether every mirrored file of the folder is in the store with the same bytes."""
    try:
        keys = store.keys()
        local = mirrored(output)
        return set(local) <= set(keys) and all(store.body(rel) == data for rel, data in local.items())
    except Exception:  # noqa: BLE001 - a file replaced while being compared: look again
        return False


def published(output) -> dict:
    try:
        return json.loads((output / "status.json").read_text()).get("publish") or {}
    except (OSError, ValueError):
        return {}


class Reader(threading.Thread):
    """Polls the bucket as a page would: status.json, then whether every image it names is
    there; a miss counts only if status.json is still the same object after the listing."""

    def __init__(self, store: Store) -> None:
        super().__init__(daemon=True)
        self.client = store.make_client()
        self.stop = threading.Event()
        self.checked = 0
        self.misses: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                obj = self.client.get_object(Bucket=BUCKET, Key="board/status.json")
                manifest = json.loads(obj["Body"].read())
                keys = {o["Key"][len("board/"):] for o in self.client.list_objects_v2(
                    Bucket=BUCKET, Prefix="board/").get("Contents", [])}
            except Exception:  # noqa: BLE001 - not there yet
                time.sleep(0.02)
                continue
            named = {c["image"] for c in manifest["charts"] if c.get("rendered_at") and c.get("image")}
            missing = named - keys
            if missing:
                again = self.client.head_object(Bucket=BUCKET, Key="board/status.json")
                if again["ETag"] == obj["ETag"]:
                    self.misses.append(f"{sorted(missing)} named by status.json {obj['ETag']}")
            self.checked += 1


def test_the_daemon_mirrors_in_order_under_continuous_re_renders_and_deletes_only_its_own_keys(
        tmp_path, store, daemons):
    b = s3_board(tmp_path, store)
    for i in range(3):
        b.data(f"data/f-{i}.txt", "1 2 3\n")
    store.put("robots.txt", b"a foreign object")
    reader = Reader(store)
    reader.start()
    try:
        d = daemons(b, env=cli_env(**env()))
        wait_for(lambda: d.alive() and {"a.png", "f-0.png", "f-2.png", "index.html"} <= set(store.keys()), 60,
                 "the first mirror")
        for i in range(3, 8):  # charts come and go while every chart re-renders every 300 ms
            b.data(f"data/f-{i}.txt", "1 2 3\n")
            wait_for(lambda: d.alive() and f"f-{i}.png" in store.keys(), 60, f"f-{i}.png in the store")
            (b.root / f"data/f-{i - 3}.txt").unlink()
            wait_for(lambda: d.alive() and f"f-{i - 3}.png" not in store.keys(), 60, f"f-{i - 3}.png gone from the store")
        first = store.body("a.png")
        wait_for(lambda: store.body("a.png") != first, 60, "a.png updated in the store")
    finally:
        reader.stop.set()
        reader.join(30)
    assert reader.checked > 10 and not reader.misses, reader.misses
    keys = set(store.keys())
    assert "robots.txt" in keys and not {f"f-{i}.png" for i in range(5)} & keys
    assert published(b.output)["state"] == "ok"
    assert d.stop() == 0
    assert in_line(store, b.output)  # the last pages, mirrored before it stopped


def test_a_store_that_stops_is_error_in_status_and_caught_up_by_itself_when_it_answers(tmp_path, store, daemons):
    b = s3_board(tmp_path, store)
    b.data("data/f-0.txt", "1\n")
    d = daemons(b, env=cli_env(**env()))
    wait_for(lambda: d.alive() and in_line(store, b.output) is not None and "f-0.png" in store.keys(), 60, "the mirror")
    store.stop()
    before = d.image("a")
    wait_for(lambda: d.alive() and published(b.output).get("state") == "error", 60, "publish: error in status.json")
    d.new_image("a", before)  # rendering and the local board carry on
    publish = published(b.output)
    assert publish["url"] == f"s3://{BUCKET}/board/" and "Could not connect" in publish["error"]
    status = cli("status", "-c", str(b.file))
    assert status.returncode >= 1 and "publish error" in status.stdout, status.stdout
    started = time.monotonic()
    store.start()
    wait_for(lambda: d.alive() and published(b.output).get("state") == "ok", 60, "publish: ok again")
    assert time.monotonic() - started < 30  # tried at least every 10 s
    assert cli("status", "-c", str(b.file)).returncode == 0
    assert d.stop() == 0
    assert in_line(store, b.output)


def test_a_starting_run_puts_right_what_was_changed_in_the_store(tmp_path, store, daemons):
    b = s3_board(tmp_path, store)
    b.write(BOARD.replace('every = "300ms"', 'every = "1h"') + store.toml(), plots=CHANGING)
    b.data("data/f-0.txt", "1\n")
    assert b.cli("build", **env()).returncode == 0
    store.put("a.png", b"changed behind plotboard's back")
    store.client.delete_object(Bucket=BUCKET, Key="board/f-0.png")
    d = daemons(b, env=cli_env(**env()))
    wait_for(lambda: d.alive() and in_line(store, b.output), 60, "the store in line again")
    assert d.stop() == 0


def test_a_slow_store_never_slows_rendering_and_sends_only_the_newest_image_once(tmp_path, store, daemons):
    from conftest import Board
    from moto_store import SlowProxy

    proxy = SlowProxy(store.port)
    try:
        toml = (FAST.format(timeout="20s") + chart("a", "plots:noise", extra='every = "100ms"')
                + store.toml().replace(store.endpoint, proxy.endpoint))
        b = Board(tmp_path / "b").write(toml, plots=CHANGING)
        d = daemons(b, env=cli_env(**env()))
        wait_for(lambda: d.alive() and proxy.count("PUT", "a.png") >= 1, 60, "a.png sent")
        proxy.delay = 2.0  # each request now takes at least 2 s to reach the store
        renders = d.state("a")["renders"]
        puts = proxy.count("PUT", "a.png")
        wait_for(lambda: d.alive() and d.state("a").get("renders", 0) >= renders + 30, 60, "30 renders")
        during = proxy.count("PUT", "a.png") - puts
        assert during <= 30 / 5, f"{during} uploads of a.png for 30 renders"  # coalesced
        proxy.delay = 0.0
        assert d.stop() == 0
        assert store.body("a.png") == (b.output / "a.png").read_bytes()  # the newest, sent at the stop
        with proxy.lock:  # the starting run listed the prefix and never downloaded an object
            assert ("GET", f"/{BUCKET}") in proxy.requests, proxy.requests[:5]
            assert not [p for m, p in proxy.requests if m == "GET" and p.startswith(f"/{BUCKET}/")]
    finally:
        proxy.close()

