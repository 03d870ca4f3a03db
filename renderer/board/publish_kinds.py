"""What `[publish]` accepts: the store's `s3://bucket/prefix/` URL, an endpoint URL (MinIO, Ceph,
R2, …) and a region; and the PublishSpec a board carries. Credentials are never read from the
board file: they come from the standard AWS chain (environment, shared config, instance role).
The table that uses these kinds is renderer.board.options.PUBLISH_OPTIONS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from renderer.board.kinds import Text

# S3's bucket rules (3-63 characters of lowercase letters, digits, dots and hyphens, starting and
# ending with a letter or digit); a looser name would only fail later, at the first upload.
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
KEY_LIMIT = 1024 - 256  # bytes of the prefix: S3 keys are at most 1024 bytes, the rest is the files'


@dataclass(frozen=True)
class PublishSpec:
    """Where the output folder is mirrored: `url` as written, its bucket and key prefix ("" or
    ending in "/"), and the optional endpoint and region."""

    url: str
    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None


class S3Url(Text):
    type_text = "`s3://bucket/prefix/` URL"

    def check(self, value: Any, root: Path) -> tuple[str, str, str]:
        """(url, bucket, prefix)."""
        value = super().check(value, root)
        parts = urlsplit(value)
        if parts.scheme != "s3":
            raise ValueError(f"expected an s3://bucket/prefix/ URL, got {value!r}")
        if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
            raise ValueError(f"expected s3://bucket/prefix/ with no user, port, query or fragment, got {value!r}"
                             " (credentials come from the AWS chain: environment, shared config, instance role)")
        if not BUCKET_RE.match(parts.netloc) or ".." in parts.netloc:
            raise ValueError(f"{parts.netloc!r} is not a bucket name (3-63 lowercase letters, digits, dots "
                             f"and hyphens), in {value!r}")
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        segments = prefix.split("/")[:-1]
        if any(s in ("", ".", "..") for s in segments) or "\\" in prefix or any(ord(ch) < 32 for ch in prefix):
            raise ValueError(f"the prefix {prefix!r} has an empty, '.' or '..' segment or a control character")
        if len(prefix.encode()) > KEY_LIMIT:
            raise ValueError(f"the prefix is {len(prefix.encode())} bytes long; at most {KEY_LIMIT}")
        return value, parts.netloc, prefix


class EndpointUrl(Text):
    type_text = "http(s) URL"

    def check(self, value: Any, root: Path) -> str:
        value = super().check(value, root)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL like 'http://127.0.0.1:9000', got {value!r}")
        if parts.username or parts.password:
            raise ValueError("holds a user or password: credentials come from the AWS chain "
                             "(environment, shared config, instance role), never from the board file")
        try:
            parts.port
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value


class Region(Text):
    type_text = "string"

    def check(self, value: Any, root: Path) -> str:
        value = super().check(value, root)
        if not REGION_RE.match(value):
            raise ValueError(f"expected a region name like 'eu-west-1', got {value!r}")
        return value
