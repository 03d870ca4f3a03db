"""The disk cache of images drawn on demand (zoom): `STATE/zoom/KEY.png`, KEY a digest of the
chart, its fingerprint (so new data or new code never finds an old picture), the window, `end`
rounded to a pixel's worth of time, the width and the scale; at most `[board] zoom_cache` bytes,
the least recently used out. Files are 0644 under the usual umask, so a web server running as
another user can send them itself (deploy/nginx.conf's X-Accel-Redirect). Used by the loop's
thread only."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections import OrderedDict
from pathlib import Path

from renderer.render.files import TEMP_RE, unlink_quietly, write_temp

log = logging.getLogger("plotboard")

FOLDER = "zoom"
KEY_RE = re.compile(r"[0-9a-f]{40}\.png\Z")
# A just-written input's bytes' digest, with when it was taken (renderer.store.fingerprints): left
# out, since it goes once the file is older (the inputs' sizes and mtimes in nanoseconds remain).
_RACY_PART = re.compile(r"~[0-9]+~[0-9a-f]+")


def cache_key(chart: str, fingerprint: str, window: float, end: float, width: int, scale: int = 1) -> str:
    """The name of the cached image of one request (a scale of 1 named as before scale came)."""
    what = json.dumps([chart, _RACY_PART.sub("", str(fingerprint)), repr(window), repr(end), width,
                       *([scale] if scale != 1 else [])])
    return hashlib.sha256(what.encode()).hexdigest()[:40]


class ZoomCache:
    """Files by key, least recently used first, with their sizes."""

    def __init__(self, state_dir: Path, limit: int) -> None:
        self.folder = state_dir / FOLDER
        self.limit = limit
        self.size = 0
        self._index: OrderedDict[str, int] = OrderedDict()  # key -> bytes, least recently used first
        self._ready = False

    def _load(self) -> None:
        """What an earlier run left, oldest use first (by mtime, which a hit renews)."""
        self._ready = True
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            found = []
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if TEMP_RE.match(entry.name):
                        unlink_quietly(Path(entry.path))
                    elif KEY_RE.match(entry.name) and entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append((st.st_mtime_ns, entry.name[:-4], st.st_size))
        except OSError as exc:
            log.warning("zoom cache %s: %s", self.folder, exc)
            return
        for _, key, size in sorted(found):
            self._index[key] = size
            self.size += size
        self._evict()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.png"

    def get(self, key: str) -> Path | None:
        """The cached file of `key` (its use renewed), or None."""
        if not self._ready:
            self._load()
        if key not in self._index:
            return None
        path = self.path(key)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise FileNotFoundError(path)
            os.utime(path)
        except OSError:  # deleted meanwhile
            self.size -= self._index.pop(key)
            return None
        self._index.move_to_end(key)
        return path

    def put(self, key: str, data: bytes) -> Path | None:
        """Keep `data` as `key`'s file (replaced atomically); None when it cannot be written."""
        if not self._ready:
            self._load()
        path = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.replace(write_temp(self.folder, path.name, data, False), path)
        except OSError as exc:
            log.warning("zoom cache: cannot write %s: %s", path, exc)
            return None
        self.size -= self._index.pop(key, 0)
        self._index[key] = len(data)
        self.size += len(data)
        self._evict(keep=key)
        return path

    def _evict(self, keep: str | None = None) -> None:
        while self.size > self.limit and self._index:
            key = next(iter(self._index))
            if key == keep:
                break
            self.size -= self._index.pop(key)
            unlink_quietly(self.path(key))

    def resize(self, limit: int) -> None:
        self.limit = limit
        if self._ready:
            self._evict()
