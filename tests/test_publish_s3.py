"""`[publish]`: the board file's table, the `s3` extra, and `build` mirroring the output folder to
a real S3 API (moto's server mode on 127.0.0.1): every file with its Content-Type and
Cache-Control, a removed chart's keys deleted, a foreign key kept, the store down and back,
and objects changed behind plotboard's back put right."""

from __future__ import annotations

import json
import os

import pytest

from conftest import TWO_CHARTS, TWO_CHARTS_DATA, Board
from moto_store import BUCKET, Store, env, mirrored


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def s3_board(tmp_path, store: Store, charts: str = TWO_CHARTS, prefix: str = "board/") -> Board:
    b = Board(tmp_path / "b").write(charts + store.toml(prefix))
    for name, text in TWO_CHARTS_DATA.items():
        b.data(name, text)
    return b


# -- the board file and the extra -------------------------------------------------------------

@pytest.mark.parametrize("table, problem", [
    ('url = "http://bucket/x/"', "publish.url: expected an s3://bucket/prefix/ URL"),
    ('url = "s3://B_ad/x/"', "publish.url: 'B_ad' is not a bucket name"),
    ('url = "s3://key:secret@bucket/x/"', "publish.url: expected s3://bucket/prefix/ with no user"),
    ('url = "s3://bucket/a/../b/"', "publish.url: the prefix 'a/../b/' has an empty, '.' or '..' segment"),
    ('url = 3', "publish.url: expected an 's3://bucket/prefix/' string, got 3"),
    ('endpoint_url = "http://h:9000"', "publish.url: missing (expected 's3://bucket/prefix/')"),
    ('url = "s3://bucket/"\nendpoint_url = "ftp://h"', "publish.endpoint_url: expected an http:// or https:// URL"),
    ('url = "s3://bucket/"\nendpoint_url = "http://u:p@h:9000"', "publish.endpoint_url: holds a user or password"),
    ('url = "s3://bucket/"\nregion = "EU WEST"', "publish.region: expected a region name like 'eu-west-1'"),
    ('url = "s3://bucket/"\nsecret_access_key = "x"', 'publish: unknown key "secret_access_key"'),
])
def test_a_mistake_in_publish_is_one_line_naming_publish_and_the_key_and_exit_2(tmp_path, table, problem):
    b = Board(tmp_path / "b").write(TWO_CHARTS + f"\n[publish]\n{table}\n")
    for command in ("build", "run"):
        result = b.cli(command, **env())
        assert result.returncode == 2, result.stderr
        assert problem in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not b.output.exists()
        assert len([l for l in result.stderr.splitlines() if "publish" in l]) == 1, result.stderr


def test_without_boto3_build_and_run_exit_2_naming_the_extra(tmp_path):
    fake = tmp_path / "fake"
    (fake / "boto3").mkdir(parents=True)
    (fake / "boto3" / "__init__.py").write_text("raise ImportError('No module named boto3 (hidden by the test)')\n")
    b = Board(tmp_path / "b").write(TWO_CHARTS + '\n[publish]\nurl = "s3://bucket/x/"\n')
    for name, text in TWO_CHARTS_DATA.items():
        b.data(name, text)
    path = f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    for command in ("build", "run"):
        result = b.cli(command, PYTHONPATH=path, **env())
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "pip install 'plotboard[s3]'" in lines[0], result.stderr
        assert not b.output.exists()


# -- build -------------------------------------------------------------------------------------

def test_build_mirrors_every_file_with_its_content_type_and_cache_control(tmp_path, store):
    b = s3_board(tmp_path, store)
    result = b.cli("build", **env())
    assert result.returncode == 0, result.stderr
    local = mirrored(b.output)
    assert {"a.png", "b.png", "index.html", "status.json", "status/index.json", "static/board.css"} <= set(local)
    assert set(store.keys()) == set(local)
    types = {".png": "image/png", ".html": "text/html; charset=utf-8", ".json": "application/json",
             ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    for rel, data in local.items():
        obj = store.get(rel)
        assert obj["Body"].read() == data, rel
        assert obj["ContentType"] == types[rel[rel.rindex("."):]], rel
        assert obj["CacheControl"] == "no-cache", rel
    assert b.status()["publish"] == {"url": f"s3://{BUCKET}/board/", "state": "ok", "error": None, "pending": 0}
    assert b.cli("status").returncode == 0
    assert not [k for k in store.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
                if not k["Key"].startswith("board/")]


def test_a_removed_charts_keys_go_and_a_foreign_key_stays(tmp_path, store):
    b = s3_board(tmp_path, store)
    assert b.cli("build", **env()).returncode == 0
    store.put("notes.txt", b"mine, not plotboard's")
    store.put("zz.png", b"a foreign image, named as plotboard names them")
    b.write(TWO_CHARTS.split("[[charts]]\nname = \"b\"")[0] + store.toml())
    result = b.cli("build", **env())
    assert result.returncode == 0, result.stderr
    keys = set(store.keys())
    assert "b.png" not in keys and "a.png" in keys
    assert {"notes.txt", "zz.png"} <= keys
    assert set(mirrored(b.output)) == keys - {"notes.txt", "zz.png"}
    assert '"b.png"' not in store.body("status.json").decode()


def test_build_puts_right_what_was_changed_or_deleted_in_the_store(tmp_path, store):
    b = s3_board(tmp_path, store)
    assert b.cli("build", **env()).returncode == 0
    store.put("a.png", b"changed behind plotboard's back")
    store.client.delete_object(Bucket=BUCKET, Key="board/b.png")
    same_size = bytearray((b.output / "index.html").read_bytes())
    same_size[-2:] = b"!!"  # the same size, other bytes: told by the ETag
    store.put("index.html", bytes(same_size))
    result = b.cli("build", **env())  # nothing to render
    assert result.returncode == 0 and "0 rendered" in result.stderr, result.stderr
    for rel, data in mirrored(b.output).items():
        assert store.body(rel) == data, rel


def test_build_with_the_store_down_fails_says_so_and_catches_up_when_it_is_back(tmp_path, store):
    b = s3_board(tmp_path, store)
    store.stop()
    result = b.cli("build", **env())
    assert result.returncode == 1, result.stderr
    errors = [l for l in result.stderr.splitlines() if "publish to" in l]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    publish = b.status()["publish"]
    assert publish["state"] == "error" and "Could not connect" in publish["error"] and publish["pending"] > 0
    status = b.cli("status")
    assert status.returncode == 1 and "publish error" in status.stdout, status.stdout
    (b.output / "a.png").stat()  # the local board is whole
    store.start()
    result = b.cli("build", **env())
    assert result.returncode == 0, result.stderr
    assert b.status()["publish"]["state"] == "ok"
    assert b.cli("status").returncode == 0
    for rel, data in mirrored(b.output).items():
        assert store.body(rel) == data, rel
    assert json.loads(store.body("status.json"))["publish"]["state"] == "ok"


@pytest.mark.parametrize("record", [b"", b"\x00\xff not json", b"[]", b'{"where": 1, "keys": []}',
                                    b'{"where": [null, "board-bucket", "board/"], "keys": {"notes.txt": ["d41d8cd98f00b204e9800998ecf8427e", "x", 0], "../x.png": 5}}'])
def test_a_publish_record_of_any_shape_never_crashes_nor_deletes_a_foreign_key(tmp_path, store, record):
    b = s3_board(tmp_path, store)
    store.put("notes.txt", b"")
    (b.root / ".plotboard").mkdir()
    (b.root / ".plotboard" / "publish.json").write_bytes(record)
    result = b.cli("build", **env())
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "notes.txt" in store.keys()
    assert set(store.keys()) == set(mirrored(b.output)) | {"notes.txt"}
