"""One pass that brings the store in line with the output folder (the folder is the truth).

A pass reads the pages and manifests first (the files that name others, in the order that the
ones naming others come first), then sends the images and static/ files that are not in the
store as they are now, then the manifests and pages it read, each phase only once the one
before is all in the store (renderer.publish.files). Whatever a page or manifest in the store
names was therefore there before it. A key that left the folder is deleted last, once no page
or manifest in the store names it, and only if plotboard wrote it (renderer.publish.record).

What the store holds is known from what this mirror sent (MD5, the answered ETag, the size);
a reconciling pass lists the prefix instead and compares (size and ETag against the recorded
ETag or the file's own MD5), so an object changed or deleted behind plotboard's back is sent
again. Nothing is ever downloaded. Files are hashed again only when their stat changed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from renderer.board.publish_kinds import PublishSpec
from renderer.publish import record
from renderer.publish.client import POOL, Store, StoreError, describe
from renderer.publish.files import CACHE_CONTROL, IMAGES, LAST_PHASE, PAGES_FROM, Stat, content_type, names, phase, scan
from renderer.readfile import read_file

log = logging.getLogger("plotboard")

FILE_LIMIT = 512 * 1024 * 1024  # bytes: the largest file mirrored (an image is far smaller)
# Seconds between two saves of the record while passes follow each other (and at close): a
# record a crash left behind misses at most what was sent since, which the next start's
# reconciling finds in the store (it is deleted there only if plotboard recorded writing it).
SAVE_EVERY = 2.0


@dataclass
class Pass:
    """What a pass did, and whether another should follow at once (`again`: a file went while
    it ran, or a deletion waits for a page that still names it)."""

    sent: int = 0
    deleted: int = 0
    again: bool = False


class Mirror:
    def __init__(self, output: Path, state_dir: Path, spec: PublishSpec,
                 make_store: Callable[[PublishSpec], Store] = Store) -> None:
        self.output, self.state_dir, self.spec = output, state_dir, spec
        self.make_store = make_store
        self.store: Store | None = None
        self.sent, self.state = record.load(state_dir, spec)  # rel -> (md5, etag, size) as sent
        self.hashed: dict[str, tuple[Stat, str]] = {}  # rel -> its stat and MD5 when last read
        self.pending = 0  # files waiting to be sent or deleted, as of the last pass's start
        self.saved: dict | None = None
        self.saved_at = float("-inf")
        self._lock = threading.Lock()
        self._page_stats: dict[str, Stat] = {}
        self.page_bytes: dict[str, bytes] = {}  # the pages and manifests as this mirror last sent them

    def close(self) -> None:
        self._save(force=True)
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- a pass ---------------------------------------------------------------------------

    def run(self, reconcile: bool = False) -> Pass:
        """One pass; raises StoreError when the store fails (what was sent stays recorded)."""
        if self.store is None:
            try:
                self.store = self.make_store(self.spec)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - botocore refusing the settings: said as the store's error
                raise StoreError(f"cannot make a client for {self.spec.url}: {describe(exc)}") from None
        done = Pass()
        try:
            listed = self.store.list() if reconcile else None
            held = self._read_pages(listed)
            images = scan(self.output, pages=False)
            pages = set(self._page_stats)
            self.hashed = {rel: h for rel, h in self.hashed.items() if rel in images or rel in pages}
            todo = [rel for rel, st in images.items() if not self._known_in_line(rel, st, listed)]
            gone = [rel for rel in self.sent if rel not in images and rel not in pages]
            self.pending = len(todo) + len(held) + len(gone)
            vanished = self._send_images({rel: images[rel] for rel in todo}, listed, done)
            if vanished:  # the pages read may name a file that is not in the store: read them afresh
                done.again = True
                return done
            for at in range(PAGES_FROM, LAST_PHASE + 1):
                self._send_held({rel: data for rel, data in held.items() if phase(rel) == at}, done)
            self._delete(gone, listed, held, done)
            self.pending = len(gone) - done.deleted if done.again else 0
            return done
        finally:
            self._save()

    def _known_in_line(self, rel: str, st: Stat, listed: dict | None) -> bool:
        """Whether the file (by its stat, not read) is known to be in the store as it is."""
        hashed = self.hashed.get(rel)
        return hashed is not None and hashed[0] == st and self._in_line(rel, hashed[1], st[0], listed)

    def _in_line(self, rel: str, md5: str, size: int, listed: dict | None) -> bool:
        """Whether the store holds these bytes (`md5`, `size`) under rel: as this mirror sent them,
        or (reconciling) as listed, by the recorded ETag or the MD5 itself."""
        sent = self.sent.get(rel)
        if listed is None:
            return sent is not None and sent[0] == md5
        there = listed.get(rel)
        if there is None or there[0] != size:
            return False
        if sent is not None and sent[0] == md5 and sent[1] == there[1] and sent[2] == size:
            return True
        if there[1] == md5:  # the same bytes (a single-part upload's ETag is its MD5): adopt it
            self.sent[rel] = (md5, there[1], size)
            return True
        return False

    def _read(self, rel: str) -> bytes:
        return read_file(self.output / rel, FILE_LIMIT, follow_symlinks=False)

    def _read_hashed(self, rel: str, seen: Stat, quiet: bool = False) -> tuple[bytes | None, str]:
        """The file's bytes and MD5, noted in `hashed` with the stat `seen` before the read (never
        newer than the bytes); (None, "") when it cannot be read (logged unless `quiet`).
        FileNotFoundError is the caller's: a file gone is news to some callers."""
        try:
            data = self._read(rel)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if not quiet:
                log.warning("publish: cannot read %s: %s", self.output / rel, exc)
            return None, ""
        md5 = hashlib.md5(data).hexdigest()
        self.hashed[rel] = (seen, md5)
        return data, md5

    def _read_pages(self, listed: dict | None) -> dict[str, bytes]:
        """The pages and manifests that are not in the store as they are, read now, the files
        that name others first (index.html before the group pages, status/index.json before
        the groups' manifests): each names only what was in the folder before it."""
        self._page_stats = stats = scan(self.output, pages=True)
        held: dict[str, bytes] = {}
        for rel in sorted(stats, key=lambda r: -phase(r)):
            if self._known_in_line(rel, stats[rel], listed):
                continue
            try:
                data, md5 = self._read_hashed(rel, stats[rel])
            except FileNotFoundError:
                continue
            if data is not None and not self._in_line(rel, md5, len(data), listed):
                held[rel] = data
        return held

    def _pool_run(self, jobs: list[Callable[[], None]]) -> None:
        """Run the jobs, POOL at a time, in daemon threads (a store that stalls never holds up
        the process's exit); the first StoreError stops the rest and is raised."""
        if len(jobs) <= 1:
            for job in jobs:
                job()
            return
        todo = iter(jobs)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    job = None if errors else next(todo, None)
                if job is None:
                    return
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the pass, which raises it
                    with lock:
                        errors.append(exc)

        threads = [threading.Thread(target=work, name="publish-upload", daemon=True)
                   for _ in range(min(POOL, len(jobs)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _put(self, rel: str, data: bytes, md5: str, done: Pass) -> None:
        etag = self.store.put(rel, data, content_type(rel), CACHE_CONTROL)
        with self._lock:
            self.sent[rel] = (md5, etag or md5, len(data))
            done.sent += 1

    def _send_images(self, todo: dict[str, Stat], listed: dict | None, done: Pass) -> list[str]:
        """Send the images and static/ files that are not in the store as they are now (read at
        the time of sending: the newest bytes); returns those that went meanwhile and that the
        store lacks."""
        vanished: list[str] = []

        def job(rel: str) -> None:
            try:
                data, md5 = self._read_hashed(rel, todo[rel])
            except FileNotFoundError:
                if rel not in self.sent:
                    vanished.append(rel)
                return
            if data is not None and not self._in_line(rel, md5, len(data), listed):
                self._put(rel, data, md5, done)

        self._pool_run([lambda rel=rel: job(rel) for rel in sorted(todo)])
        return vanished

    def _send_held(self, held: dict[str, bytes], done: Pass) -> None:
        def job(rel: str, data: bytes) -> None:
            self._put(rel, data, hashlib.md5(data).hexdigest(), done)
            self.page_bytes[rel] = data

        self._pool_run([lambda rel=rel, data=data: job(rel, data) for rel, data in sorted(held.items())])

    def _delete(self, gone: list[str], listed: dict | None, held: dict[str, bytes], done: Pass) -> None:
        """Delete the keys plotboard wrote whose files left the folder, once no page or manifest
        in the store names them: pages first, images last."""
        if not gone:
            return
        contents: list[bytes] | None = None
        for rel in sorted(gone, key=lambda r: -(phase(r) or 0)):
            sent = self.sent[rel]
            if listed is not None:
                there = listed.get(rel)
                if there is None or there != (sent[2], sent[1]):  # gone, or changed behind plotboard's back:
                    del self.sent[rel]  # not plotboard's to delete any more
                    continue
            if phase(rel) == IMAGES or phase(rel) in (1, 2):
                if contents is None:
                    contents = self._store_pages(held)
                if contents is None or any(names(data, rel) for data in contents):
                    done.again = True  # a page in the store may still name it: later
                    continue
            self.store.delete(rel)
            del self.sent[rel]
            done.deleted += 1

    def _store_pages(self, held: dict[str, bytes]) -> list[bytes] | None:
        """The pages and manifests in the store now (sent this pass, or read back and found to
        be what was sent); None when one cannot be told."""
        found = list(held.values())
        self.page_bytes = {rel: data for rel, data in self.page_bytes.items() if rel in self.sent}
        for rel in self._page_stats:
            if rel in held:
                continue
            sent = self.sent.get(rel)
            data = self.page_bytes.get(rel)
            if data is None:
                try:
                    data = self._read(rel)
                except OSError:
                    return None
            if sent is None or sent[0] != hashlib.md5(data).hexdigest():
                return None
            found.append(data)
        return found

    def count_pending(self) -> int:
        """How many files wait to be sent or deleted, told from what was sent (no store asked)."""
        pages, images = scan(self.output, pages=True), scan(self.output, pages=False)
        waiting = 0
        for rel, st in {**pages, **images}.items():
            if self._known_in_line(rel, st, None):
                continue
            try:
                data, md5 = self._read_hashed(rel, st, quiet=True)
            except FileNotFoundError:
                continue
            if data is not None:
                waiting += not self._in_line(rel, md5, len(data), None)
        self.pending = waiting + sum(1 for rel in self.sent if rel not in pages and rel not in images)
        return self.pending

    def save(self) -> None:
        self._save(force=True)

    def _save(self, force: bool = False) -> None:
        if not force and time.monotonic() < self.saved_at + SAVE_EVERY:
            return
        current = {"keys": dict(self.sent), "state": dict(self.state)}
        if current == self.saved:
            return
        try:
            record.save(self.state_dir, self.spec, self.sent, self.state)
            self.saved, self.saved_at = current, time.monotonic()
        except Exception as exc:  # noqa: BLE001 - PublishError, OSError: said, tried again next pass
            log.warning("publish: cannot record what was sent: %s", exc)

