"""Sending an alert's messages: a webhook POST or a mail (renderer.alerts.mail), each attempt
bounded by a timeout, retried with back-off for at least GIVE_UP_AFTER, apart from the loop:
one thread per alert, so a receiver that hangs costs that alert a timeout and nothing else.
Every failed attempt is logged (never with a secret: the alert's name, not its URL) and counted."""

from __future__ import annotations

import http.client
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from renderer import __version__, jsonfile
from renderer.alerts.book import Stats
from renderer.alerts.judge import Message
from renderer.board.alert_options import Alert
from renderer.text import cut, one_line
from renderer.threads import Died, guarded_thread

log = logging.getLogger("plotboard")

GIVE_UP_AFTER = 600.0  # seconds of retries before a message is given up
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # the waits between attempts, then 60 s apart
MAX_ANSWER = 64 * 1024  # bytes of a webhook's answer read (and ignored)


class SendError(Exception):
    """An attempt failed: its one-line reason (refused, timed out, HTTP 500...)."""


def retry_wait(started: float, now: float, attempt: int, give_up: float = GIVE_UP_AFTER) -> float | None:
    """How long to wait before the next attempt after `attempt` failed ones of a message first
    tried at `started`, or None: it has been tried for `give_up` seconds, give it up."""
    if now - started >= give_up:
        return None
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


def post(url: str, body: bytes, timeout: float) -> None:
    """POST `body` as application/json; raises SendError unless the answer is 2xx."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = kind(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": f"plotboard/{__version__}"})
        answer = conn.getresponse()
        answer.read(MAX_ANSWER)
        if not 200 <= answer.status < 300:
            raise SendError(f"HTTP {answer.status} {one_line(answer.reason or '')}".rstrip())
    except TimeoutError:
        raise SendError(f"timed out after {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise SendError(f"{type(exc).__name__}: {one_line(getattr(exc, 'strerror', None) or str(exc))}") from None
    finally:
        conn.close()


def webhook_body(board_title: str, message: Message) -> bytes:
    return jsonfile.dumps({"board": board_title, "alert": message.alert, "events": message.events}).encode()


def deliver(alert: Alert, board_title: str, output: Path, message: Message, timeout: float) -> None:
    """One attempt at sending the message; raises SendError saying why it failed."""
    if alert.webhook is not None:
        post(alert.webhook, webhook_body(board_title, message), timeout)
        return
    from renderer.alerts import mail

    names = [e["chart"] for e in message.events]
    images = {n: output / f"{n}.png" for n in dict.fromkeys(names) if (output / f"{n}.png").is_file()}
    images = dict(list(images.items())[:mail.MAX_IMAGES])
    try:
        mail.send(alert.email, mail.compose(alert.email, board_title, alert.name, message.events, images), timeout)
    except Exception as exc:  # noqa: BLE001 - smtplib's errors, OSError, and whatever the mail part raises
        raise SendError(f"{type(exc).__name__}: {cut(one_line(str(exc)))}") from None


def attempt(alert: Alert, board_title: str, output: Path, message: Message, stats: Stats, lock: threading.Lock,
            clock: Callable[[], float], timeout: float | None = None) -> bool:
    """One attempt, logged and counted; True when the message was delivered. `timeout`: the
    alert's own unless less is left (a build's patience)."""
    try:
        deliver(alert, board_title, output, message, alert.timeout if timeout is None else min(timeout, alert.timeout))
    except SendError as exc:
        log.warning("alert %s: sending %d event(s) failed: %s", alert.name, len(message.events), exc)
        with lock:
            stats.failed += 1
            stats.last_error = str(exc)
        return False
    log.info("alert %s: sent %d event(s)", alert.name, len(message.events))
    with lock:
        stats.sent += 1
        stats.last_sent_at = clock()
    return True


class Sender:
    """One alert's sending thread: one message at a time (the judge holds the next ones back
    until this one is delivered or given up), retried with back-off. `done(self, message, ok)` and
    `notify()` are called from this thread: they must only record and wake."""

    def __init__(self, alert: Alert, board_title: str, output: Path, stats: Stats, lock: threading.Lock,
                 done: Callable[[Sender, Message, bool], None], notify: Callable[[], None], died: Died | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.alert, self.board_title, self.output = alert, board_title, output
        self.stats, self.lock, self.done, self.notify, self.clock = stats, lock, done, notify, clock
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = guarded_thread(f"alert-{alert.name}", self._run, died)
        self._thread.start()

    def put(self, message: Message) -> None:
        self._queue.put_nowait(message)

    def stop(self, wait: float = 1.0) -> None:
        """Stop after the attempt in flight (a message not delivered stays due: the bookkeeping
        does not count it as told)."""
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(wait)

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._queue.get()
            if message is None:
                return
            started, tries = self.clock(), 0
            while not self._stop.is_set():
                tries += 1
                ok = attempt(self.alert, self.board_title, self.output, message, self.stats, self.lock, self.clock)
                if ok:
                    self.done(self, message, True)
                    break
                self.notify()  # counted: status.json says so within seconds
                wait = retry_wait(started, self.clock(), tries)
                if wait is None:
                    log.error("alert %s: gave up sending %d event(s) after %d attempts: %s", self.alert.name,
                              len(message.events), tries, self.stats.last_error)
                    self.done(self, message, False)
                    break
                self._stop.wait(wait)
