"""The preview server (renderer.serve): real HTTP requests against a real folder."""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

import pytest

from renderer.serve import start_server

PNG = b"\x89PNG\r\n\x1a\n" + b"first image"


def get(port: int, path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def replace(folder: Path, name: str, data: bytes) -> None:
    temp = folder / f".{name}.x.tmp"
    temp.write_bytes(data)
    os.replace(temp, folder / name)


@pytest.fixture
def site(tmp_path: Path):
    folder = tmp_path / "public"
    (folder / "static").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>board</title>")
    (folder / "status.json").write_text('{"charts": []}')
    (folder / "cpu.png").write_bytes(PNG)
    (folder / "static" / "board.css").write_text("body {}")
    (folder / ".cpu.png.abcd.tmp").write_bytes(b"half")
    (tmp_path / "secret.txt").write_text("outside the folder")
    server = start_server(folder, 0)
    try:
        yield folder, server
    finally:
        server.shutdown()


def test_binds_loopback_on_a_free_port_and_shutdown_joins(tmp_path):
    server = start_server(tmp_path, 0)
    port = server.port
    assert server.server_address[0] == "127.0.0.1" and port > 0
    assert server.url == f"http://127.0.0.1:{port}/"
    assert server.thread.is_alive() and server.thread.daemon
    server.shutdown()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_page_and_manifest_are_never_cached(site):
    folder, server = site
    for path in ("/", "/index.html", "/status.json"):
        status, headers, body = get(server.port, path)
        assert status == 200, path
        assert headers["cache-control"] == "no-cache", path
    assert get(server.port, "/")[2] == (folder / "index.html").read_bytes()
    status, headers, body = get(server.port, "/status.json")
    assert headers["content-type"] == "application/json" and body == b'{"charts": []}'


def test_versioned_urls_are_immutable_and_plain_ones_revalidate(site):
    _, server = site
    status, headers, body = get(server.port, "/cpu.png?v=9f2c")
    assert status == 200 and body == PNG
    assert headers["content-type"] == "image/png"
    assert headers["content-length"] == str(len(PNG))
    assert "immutable" in headers["cache-control"]
    assert get(server.port, "/cpu.png")[1]["cache-control"] == "no-cache"
    assert "immutable" in get(server.port, "/static/board.css?v=1")[1]["cache-control"]


def test_etag_revalidation_sees_a_replacement_within_the_same_second(site):
    folder, server = site
    _, first, _ = get(server.port, "/status.json")
    status, headers, body = get(server.port, "/status.json", **{"If-None-Match": first["etag"],
                                                                 "If-Modified-Since": first["last-modified"]})
    assert status == 304 and body == b"" and headers["etag"] == first["etag"]
    # Same size, same second: Last-Modified cannot tell the files apart, the ETag must.
    replace(folder, "status.json", b'{"charts": {}}')
    status, headers, body = get(server.port, "/status.json", **{"If-None-Match": first["etag"],
                                                                 "If-Modified-Since": first["last-modified"]})
    assert status == 200 and body == b'{"charts": {}}'
    assert headers["etag"] != first["etag"]


def test_head_missing_hidden_outside_and_folders(site):
    folder, server = site
    status, headers, body = get(server.port, "/cpu.png", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(PNG))
    assert get(server.port, "/nope.png")[0] == 404
    assert get(server.port, "/.cpu.png.abcd.tmp")[0] == 404  # a publish in progress
    assert get(server.port, "/../secret.txt")[0] == 404
    assert get(server.port, "/%2e%2e/secret.txt")[0] == 404
    assert get(server.port, "/cpu.png/")[0] == 404
    status, headers, _ = get(server.port, "/static")
    assert status == 301 and headers["location"] == "/static/"
    assert get(server.port, "/static/")[0] == 404  # no directory listings


def test_a_stalled_client_does_not_block_others(site):
    _, server = site
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        stalled.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        status, _, body = get(server.port, "/cpu.png?v=1")
        assert status == 200 and body == PNG
    finally:
        stalled.close()
