"""The object store's client: boto3 (the `s3` extra), imported only where it is used.

boto3 rather than fsspec/s3fs: s3fs pulls in aiobotocore, which pins botocore to exact
versions (pinning pain for every other package of a host), and boto3 is what moto, the test
suite's store, targets. Every S3-compatible store (MinIO, Ceph, R2) speaks its API through
`endpoint_url`. Credentials come from boto3's standard chain only (environment, shared config,
instance role), never from the board file.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from renderer.board.publish_kinds import PublishSpec
from renderer.errors import PlotboardError
from renderer.text import cut, one_line

EXTRA = "pip install 'plotboard[s3]'"
CONNECT_TIMEOUT = 5.0  # seconds: a store that is down fails a pass quickly
READ_TIMEOUT = 20.0  # a store that stalls fails it too; the pass is tried again later
POOL = 4  # uploads at once


class MissingS3(PlotboardError):
    """The board has [publish], but boto3 is not installed."""

    exit_code = 2


class StoreError(Exception):
    """The store did not do what was asked (down, slow, refused): one line saying why."""


def require_client() -> Any:
    """Import boto3, or raise MissingS3 naming the extra that provides it."""
    try:
        import boto3
        import botocore  # noqa: F401
    except ImportError as exc:
        raise MissingS3(f"[publish] needs boto3, which cannot be imported ({exc}); install it with: {EXTRA}") from None
    return boto3


def require_publisher(board: Any) -> None:
    """Fail at load, before anything is written, when the board publishes and boto3 is missing."""
    if board.publish is not None:
        require_client()


def describe(exc: BaseException) -> str:
    """An error of boto3 or the network as one bounded line."""
    text = one_line(str(exc)) or type(exc).__name__
    return cut(f"{type(exc).__name__}: {text}", 300)


class Store:
    """One bucket and prefix: put, delete and list objects under the prefix, by their keys
    relative to it. Every failure is a StoreError."""

    def __init__(self, spec: PublishSpec) -> None:
        boto3 = require_client()
        from botocore.config import Config

        self.spec = spec
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=POOL * 2,
                        s3={"addressing_style": "path"} if spec.endpoint_url else None)
        self.client = boto3.session.Session().client("s3", endpoint_url=spec.endpoint_url,
                                                     region_name=spec.region, config=config)

    def key(self, rel: str) -> str:
        return self.spec.prefix + rel

    def put(self, rel: str, data: bytes, content_type: str, cache_control: str) -> str:
        """Store the bytes under rel; returns the ETag the store answered (without quotes)."""
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        answer = self._call("put", rel, self.client.put_object, Bucket=self.spec.bucket, Key=self.key(rel), Body=data,
                   ContentType=content_type, CacheControl=cache_control, ContentMD5=md5)
        return str(answer.get("ETag", "")).strip('"')

    def delete(self, rel: str) -> None:
        self._call("delete", rel, self.client.delete_object, Bucket=self.spec.bucket, Key=self.key(rel))

    def list(self) -> dict[str, tuple[int, str]]:
        """Every object under the prefix: relative key -> (size, ETag without quotes)."""
        found: dict[str, tuple[int, str]] = {}
        kwargs = {"Bucket": self.spec.bucket, "Prefix": self.spec.prefix}
        while True:
            page = self._call("list", "", self.client.list_objects_v2, **kwargs)
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.startswith(self.spec.prefix):
                    found[key[len(self.spec.prefix):]] = (int(item["Size"]), str(item.get("ETag", "")).strip('"'))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found
            kwargs["ContinuationToken"] = token

    def _call(self, what: str, rel: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except Exception as exc:  # noqa: BLE001 - botocore's errors have no one base; all are the store's
            raise StoreError(f"{what} s3://{self.spec.bucket}/{self.key(rel)}: {describe(exc)}") from None

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing connections is best effort
            pass
