"""A mail alert: the message (plain text and HTML with the charts' images inline) and its sending.

compose() builds one message for one group of events: a subject naming the board, the kinds of
change and the charts (one line, whatever the titles hold), a plain-text part and an HTML part
(every outside text escaped by jinja2) showing each chart's current image inline, at most
MAX_IMAGES of them (multipart/alternative: text/plain, then multipart/related: text/html and
the images, referenced as `cid:`, each linked to its event's `moment` when it has one). An image that is missing, not a regular file, too large or
not a PNG is left out of the mail and said so; it never raises.

send() hands a message to the target's SMTP server with smtplib: STARTTLS with the server's
certificate verified against the default trust store (SSL_CERT_FILE / SSL_CERT_DIR name another
one), login with the password read from the environment variable `password_env` at send time.
Every connect, send and receive waits at most what is left of `timeout`; the connection is always closed; the
password never appears in an exception's text.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any

from renderer.board.alert_spec import MailTarget
from renderer.readfile import MiB, read_file
from renderer.text import MAX_ERROR, count, cut, format_size, one_line

log = logging.getLogger("plotboard")

MAX_IMAGES = 10  # the most images one mail carries
MAX_LISTED = 200  # the most events one mail lists; the rest are counted
IMAGE_BYTES = 7 * MiB  # the most bytes of images one mail carries (about 9.5 MB once encoded), so
# that it stays under the size limit of common mail servers (10 MB and more)
SUBJECT_NAMES = 100  # characters of chart names in the subject before "(+N more)"
MAX_TITLE = 200  # characters of a board's or chart's title
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DOMAIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")


class MailError(smtplib.SMTPException):
    """A mail that cannot be sent as configured (no password in the environment)."""


def compose(target: MailTarget, board_title: str, alert: str, events: list[dict],
            images: dict[str, Path]) -> EmailMessage:
    """The mail for `events` (each shaped as in the webhook body); `images`: chart name → its current PNG."""
    board = _field(board_title, MAX_TITLE) or "plotboard"
    entries = [_entry(event) for event in events]
    listed, unlisted = entries[:MAX_LISTED], len(entries) - MAX_LISTED
    domain = _domain(target.sender)
    attachments, left_out = _images(listed, images, domain)
    subject = _subject(board, entries)

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = one_line(target.sender)
    message["To"] = ", ".join(one_line(address) for address in target.to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("plotboard", domain=domain)
    message["X-Plotboard-Alert"] = _field(alert, 100)
    notes = []
    if unlisted > 0:
        notes.append(f"{count(unlisted, 'more change')} not listed here (at most {MAX_LISTED} per mail).")
    if left_out:
        notes.append(f"{count(left_out, 'more image')} left out (at most {MAX_IMAGES} per mail).")
    summary = f"alert {_field(alert, 100)}: {count(len(entries), 'change')}"
    message.set_content(_text(board, summary, listed, notes))
    message.add_alternative(_template().render(subject=subject, board=board, summary=summary,
                                               events=listed, notes=notes), subtype="html")
    if attachments:
        html = message.get_payload()[1]
        for chart, cid, data in attachments:
            html.add_related(data, "image", "png", cid=cid, disposition="inline", filename=f"{chart}.png")
    return message


def send(target: MailTarget, message: EmailMessage, timeout: float) -> None:
    """Sends one message; raises OSError or smtplib.SMTPException, whose text never holds the password."""
    password = _password(target)
    smtp = _DeadlineSMTP(time.monotonic() + timeout)
    try:
        smtp.connect(target.host, target.port)
        smtp.ehlo_or_helo_if_needed()
        if target.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if target.username is not None:
            smtp.login(target.username, password or "")
        refused = smtp.send_message(message, from_addr=target.sender, to_addrs=list(target.to))
        if refused:  # some accepted: sending again would repeat the mail to them
            log.warning("mail alert: the server refused %s", _field("; ".join(
                f"{to} ({code} {reply.decode(errors='replace')})" for to, (code, reply) in refused.items()), 1000))
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass  # the message was accepted
    except (OSError, smtplib.SMTPException) as e:
        secrets = _secrets(target.username, password)
        if any(secret in text for secret in secrets for text in _chain(e)):
            text = str(e)
            for secret in secrets:
                text = text.replace(secret, "********")
            raise smtplib.SMTPException(text) from None
        raise
    finally:
        smtp.close()


class _DeadlineSMTP(smtplib.SMTP):
    """smtplib.SMTP whose every connect, send and receive waits at most what is left until
    `deadline` (time.monotonic()), instead of a whole timeout each."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        super().__init__(timeout=self._left())

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out talking to the mail server")
        return left

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> tuple[int, bytes]:
        self._host = host  # STARTTLS checks the certificate against it; smtplib sets it only in __init__
        return super().connect(host, port, source_address)

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return super()._get_socket(host, port, self._left())

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock:  # smtplib would read through sock.makefile()
            self.file = io.BufferedReader(_DeadlineReader(self))
        return super().getreply()

    def send(self, s: Any) -> None:
        if self.sock:
            self.sock.settimeout(self._left())
        super().send(s)



class _DeadlineReader(io.RawIOBase):
    """The SMTP connection's socket read with each receive waiting only until the deadline, so
    a server that dribbles a reply a byte at a time cannot hold a send for longer."""

    def __init__(self, smtp: _DeadlineSMTP) -> None:
        self.smtp = smtp

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        sock = self.smtp.sock
        sock.settimeout(self.smtp._left())
        return sock.recv_into(buffer)


def _password(target: MailTarget) -> str | None:
    """The password from the environment, or None without a login; MailError when it is missing."""
    if target.username is None:
        return None
    if not target.password_env:
        raise MailError(f"a login as {one_line(target.username)!r} needs password_env")
    password = os.environ.get(target.password_env)
    if not password:
        raise MailError(f"password_env: the environment variable {target.password_env} is not set "
                        f"(the password for {one_line(target.username)!r} on {target.host})")
    return password


def _secrets(username: str | None, password: str | None) -> list[str]:
    """The password and the forms AUTH PLAIN and AUTH LOGIN send it in."""
    if not password:
        return []
    forms = [password, base64.b64encode(password.encode()).decode()]
    if username is not None:
        forms.append(base64.b64encode(f"\0{username}\0{password}".encode()).decode())
    return forms


def _chain(e: BaseException) -> list[str]:
    """The texts of an exception and of those it was raised from or while handling."""
    texts, seen = [], set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return texts


def _field(value: Any, limit: int) -> str:
    """An outside value as one bounded line ('' for None)."""
    return "" if value is None else one_line(cut(str(value), limit))


def _entry(event: dict) -> dict:
    """What the text and the HTML show of one event."""
    chart = _field(event.get("chart"), MAX_TITLE)
    url, moment = _field(event.get("url"), 2000), _field(event.get("moment"), 2000)
    return {
        "chart": chart,
        "title": _field(event.get("title"), MAX_TITLE) or chart,
        "event": _field(event.get("event"), 40),
        "state": _field(event.get("state"), 40),
        "previous": _field(event.get("previous"), 40),
        "error": _field(event.get("error"), MAX_ERROR),
        "at": _field(event.get("at"), 40),
        "url": url if url.startswith(("https://", "http://")) else "",
        "moment": moment if moment.startswith(("https://", "http://")) else "",
        "cid": "", "no_image": "",
    }


def _images(entries: list[dict], images: dict[str, Path], domain: str) -> tuple[list[tuple[str, str, bytes]], int]:
    """The images to attach (chart, content id, bytes), each chart's first entry given its `cid`
    or why it has none; and how many charts with an image were left out past MAX_IMAGES."""
    attached: list[tuple[str, str, bytes]] = []
    seen: set[str] = set()
    left_out = total = 0
    for entry in entries:
        chart = entry["chart"]
        if chart in seen:
            continue
        seen.add(chart)
        path = images.get(chart)
        if path is None:
            continue
        if len(attached) >= MAX_IMAGES:
            left_out += 1
            continue
        try:
            data = read_file(path, IMAGE_BYTES)
        except (OSError, ValueError) as e:  # missing, not a regular file, too large, a bad path
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            entry["no_image"] = f"no image: {_field(reason, 200)}"
            continue
        if not data.startswith(PNG_SIGNATURE):
            entry["no_image"] = "no image: the file is not a PNG"
            continue
        if total + len(data) > IMAGE_BYTES:
            entry["no_image"] = f"no image: the mail's images would pass {format_size(IMAGE_BYTES)}"
            continue
        total += len(data)
        cid = make_msgid(f"plotboard.{len(attached)}", domain=domain)
        entry["cid"] = cid[1:-1]
        attached.append((chart, cid, data))
    return attached, left_out


def _subject(board: str, entries: list[dict]) -> str:
    """'[Ops board] error: cpu, disk-a (+38 more)': the kinds of change, then chart names while they fit."""
    kinds = list(dict.fromkeys(e["event"] for e in entries if e["event"])) or ["change"]
    charts = list(dict.fromkeys(e["chart"] for e in entries if e["chart"]))
    names: list[str] = []
    for chart in charts:
        if names and len(", ".join(names + [chart])) > SUBJECT_NAMES:
            break
        names.append(chart if names or len(chart) <= SUBJECT_NAMES else cut(chart, SUBJECT_NAMES))
    more = f" (+{len(charts) - len(names)} more)" if len(charts) > len(names) else ""
    return f"[{board}] {', '.join(kinds)}: {', '.join(names)}{more}"


def _text(board: str, summary: str, entries: list[dict], notes: list[str]) -> str:
    lines = [f"{board}, {summary}", ""]
    for e in entries:
        was = f" (was {e['previous']})" if e["previous"] else ""
        lines.append(f"{e['event'] or 'change'}: {e['chart']} ({e['title']})")
        lines.append(f"  state: {e['state']}{was}")
        lines.extend(f"  {key}: {e[key]}" for key in ("error", "at", "url", "moment") if e[key])
        if e["no_image"]:
            lines.append(f"  {e['no_image']}")
        lines.append("")
    lines.extend(notes)
    return "\n".join(lines).rstrip() + "\n"


_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif">
<h1 style="font-size: 1.2em">{{ board }}</h1>
<p>{{ summary }}</p>
{% for e in events %}
<div style="margin: 1em 0; padding-left: .6em;
 border-left: 4px solid {{ '#2a2' if e.state == 'ok' else '#c22' }}">
<h2 style="font-size: 1em; margin: 0">
{%- if e.url %}<a href="{{ e.url }}">{{ e.title }}</a>{% else %}{{ e.title }}{% endif %}
 <small>({{ e.chart }})</small></h2>
<p style="margin: .3em 0"><b>{{ e.event or 'change' }}</b>: {{ e.state }}
{%- if e.previous %} (was {{ e.previous }}){% endif %}{% if e.at %}, {{ e.at }}{% endif %}</p>
{% if e.error %}<pre style="white-space: pre-wrap">{{ e.error }}</pre>{% endif %}
{% if e.cid %}{% if e.moment %}<a href="{{ e.moment }}">{% endif %}<img src="cid:{{ e.cid }}" alt="{{ e.title }}"
 style="max-width: 100%">{% if e.moment %}</a>{% endif %}
{%- elif e.no_image %}<p><i>{{ e.no_image }}</i></p>{% endif %}
</div>
{% endfor %}
{% for note in notes %}<p>{{ note }}</p>
{% endfor %}
</body></html>
"""


@lru_cache(maxsize=1)
def _template() -> Any:
    import jinja2

    return jinja2.Environment(autoescape=True).from_string(_HTML)


def _domain(sender: str) -> str:
    """The sender's domain for Message-ID and Content-ID (never a DNS lookup), or 'localhost'."""
    domain = sender.rpartition("@")[2].strip().rstrip(">")
    return domain if _DOMAIN_RE.match(domain) else "localhost"
