"""What plotboard wrote to the store, kept in the bookkeeping folder (`publish.json`): each key's
MD5, the ETag the store answered and the size, for the store and prefix it was written to.

Only keys recorded here are ever deleted from the store, so a foreign object under the prefix
stays. A record of any shape or content never crashes a command: what is not of the expected
shape is ignored (and then nothing it names is deleted), and a record of another store or
prefix is not used.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from renderer import jsonfile
from renderer.board.publish_kinds import PublishSpec
from renderer.publish.files import phase
from renderer.readfile import BOOKKEEPING_LIMIT, read_file
from renderer.store.publish import make_folder, write_atomic

RECORD = "publish.json"
MD5_RE = re.compile(r"[0-9a-f]{32}\Z")

Sent = tuple[str, str, int]  # MD5 of the bytes sent, the ETag the store answered, the size


def where(spec: PublishSpec) -> list:
    return [spec.endpoint_url, spec.bucket, spec.prefix]


def load(state_dir: Path, spec: PublishSpec) -> tuple[dict[str, Sent], dict[str, Any]]:
    """The keys written to this store and prefix, and the last pass's state ({} if unknown)."""
    try:
        data = jsonfile.loads(read_file(state_dir / RECORD, BOOKKEEPING_LIMIT))
    except (OSError, ValueError, RecursionError):
        return {}, {}
    if not isinstance(data, dict) or data.get("where") != where(spec) or not isinstance(data.get("keys"), dict):
        return {}, {}
    keys = {}
    for rel, value in data["keys"].items():
        if (isinstance(rel, str) and phase(rel) is not None and isinstance(value, list) and len(value) == 3
                and isinstance(value[0], str) and MD5_RE.match(value[0]) and isinstance(value[1], str)
                and isinstance(value[2], int) and not isinstance(value[2], bool)):
            keys[rel] = (value[0], value[1], value[2])
    state = data.get("state")
    return keys, state if isinstance(state, dict) else {}


def save(state_dir: Path, spec: PublishSpec, keys: dict[str, Sent], state: dict[str, Any]) -> None:
    make_folder(state_dir)
    data = {"where": where(spec), "keys": {rel: list(v) for rel, v in sorted(keys.items())}, "state": state}
    write_atomic(state_dir, RECORD, jsonfile.dumps(data).encode(), durable=True)
