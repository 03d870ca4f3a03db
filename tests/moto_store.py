"""A real S3 API for the publishing tests: moto's server mode on 127.0.0.1 in this process
(its objects survive a stop and a start on the same port, as a store's do), with a boto3
client for the test's own looks, and the environment a plotboard subprocess needs (dummy
credentials, no shared config, no instance metadata)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from browser import free_port

BUCKET = "board-bucket"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class Store:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        os.environ.update(CREDENTIALS)
        quiet()
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.running = False
        self.start()
        import urllib.request  # moto's objects live as long as this process: start from none

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=30).close()
        self.client = self.make_client()
        self.client.create_bucket(Bucket=BUCKET)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        if not self.running:
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self.server.start()
            self.running = True

    def stop(self) -> None:
        if self.running:
            self.server.stop()
            self.running = False

    def toml(self, prefix: str = "board/") -> str:
        return f'\n[publish]\nurl = "s3://{BUCKET}/{prefix}"\nendpoint_url = "{self.endpoint}"\nregion = "us-east-1"\n'

    def keys(self, prefix: str = "board/") -> dict[str, dict]:
        """Every object under the prefix: relative key -> its listing entry."""
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"][len(prefix):]] = item
        return found

    def get(self, rel: str, prefix: str = "board/") -> dict:
        return self.client.get_object(Bucket=BUCKET, Key=prefix + rel)

    def body(self, rel: str, prefix: str = "board/") -> bytes:
        return self.get(rel, prefix)["Body"].read()

    def put(self, rel: str, data: bytes, prefix: str = "board/") -> None:
        self.client.put_object(Bucket=BUCKET, Key=prefix + rel, Body=data)

    def close(self) -> None:
        self.stop()


def env() -> dict[str, str]:
    return dict(CREDENTIALS)


def mirrored(output: Path) -> dict[str, bytes]:
    """The files of an output folder that are mirrored (no hidden temporary files)."""
    found = {}
    for path in output.rglob("*"):
        rel = path.relative_to(output).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            found[rel] = path.read_bytes()
    return found


def quiet() -> None:
    """moto's server logs every request (werkzeug): keep the test output readable."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class SlowProxy:
    """A TCP proxy in front of the store that counts requests by method and path, and while
    `delay` is set holds each chunk a client sends for that long (a slow store)."""

    REQUEST_RE = None

    def __init__(self, port: int) -> None:
        import re
        import socket
        import threading

        self.REQUEST_RE = re.compile(rb"(PUT|GET|DELETE|HEAD|POST) (/[^ ?]*)[^ ]* HTTP/1\.1\r\n")
        self.target = port
        self.delay = 0.0
        self.requests: list[tuple[str, str]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list = []
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.lock = threading.Lock()
        self._spawn(self._accept)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str, rel: str, prefix: str = "board/") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.endswith("/" + prefix + rel))

    def _spawn(self, target, *args) -> None:
        import threading

        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        import socket

        self.listener.settimeout(0.1)  # close() does not wake an accept(): look at `closed` often
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, server]
            self._spawn(self._pipe, client, server, True)
            self._spawn(self._pipe, server, client, False)

    def _pipe(self, src, dst, upstream: bool) -> None:
        import time

        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream:
                    with self.lock:
                        self.requests += [(m.decode(), p.decode()) for m, p in self.REQUEST_RE.findall(data)]
                    if self.delay:
                        time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        for thread in self.threads:
            thread.join(10)
