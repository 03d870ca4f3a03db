"""What an `[[alerts]]` entry (and `[board] url`) may say: the kinds of its keys, its option
table, and the frozen Alert the loader makes of it (renderer.board.config reads them through
the same collector as every other table; tests/test_docs.py holds README.md's table to it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from renderer.board.alert_spec import MailTarget
from renderer.board.kinds import Duration, Name, Option, Problems, Strings, Text, Whole

EVENTS = ("error", "stale", "recovered")


class KeyProblems(Problems):
    """Things wrong inside a table's value, each under its own key (`.to`, `.password`)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__([message for _, message in pairs])
        self.keys = [key for key, _ in pairs]


class Url(Text):
    """An http:// or https:// URL."""

    type_text = "http(s) URL"

    def __init__(self, name: str, doc: str, default: Any = None, **kw: Any) -> None:
        super().__init__(name, doc, default, what="an http:// or https:// URL string", **kw)

    def check(self, value: Any, root: Path) -> str:
        url = super().check(value, root)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return url


class Globs(Strings):
    type_text = "list of globs"


class Events(Strings):
    type_text = "list of `error`, `stale`, `recovered`"

    def check(self, value: Any, root: Path) -> tuple[str, ...]:
        events = super().check(value, root)
        wrong = [e for e in events if e not in EVENTS]
        if wrong or not events:
            raise ValueError(f"expected a list of {', '.join(EVENTS)} (at least one), got {value!r}")
        return tuple(e for e in EVENTS if e in events)


MAIL_KEYS = ("to", "from", "host", "port", "starttls", "username", "password_env")


class Email(Option):
    """The `email` table: to, from, host, port, starttls, username, password_env; a password
    itself never (it would sit in the board file): `password_env` names the variable holding it."""

    type_text = "table"

    def check(self, value: Any, root: Path) -> MailTarget:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table like {{ to = [\"ops@example.com\"], from = \"plotboard@example.com\" }}, "
                             f"got {value!r}")
        bad: list[tuple[str, str]] = []
        for key in value:
            if key == "password":
                bad.append((".password", "a password does not belong in the board file: put it in an environment "
                                         "variable and name it with password_env = \"SMTP_PASSWORD\""))
            elif key not in MAIL_KEYS:
                bad.append((f".{key}", f"unknown key (allowed: {', '.join(MAIL_KEYS)})"))
        to = value.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(t, str) and "@" in t for t in to):
            bad.append((".to", f"expected a list of mail addresses, got {to!r}"))
        sender = value.get("from")
        if not isinstance(sender, str) or "@" not in sender:
            bad.append((".from", f"expected a mail address, got {sender!r}"))
        host = value.get("host", "localhost")
        if not isinstance(host, str) or not host:
            bad.append((".host", f"expected a host name, got {host!r}"))
        port = value.get("port", 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            bad.append((".port", f"expected a port number 1 to 65535, got {port!r}"))
        starttls = value.get("starttls", False)
        if not isinstance(starttls, bool):
            bad.append((".starttls", f"expected true or false, got {starttls!r}"))
        username, password_env = value.get("username"), value.get("password_env")
        if username is not None and not isinstance(username, str):
            bad.append((".username", f"expected a string, got {username!r}"))
        if password_env is not None and (not isinstance(password_env, str) or not password_env):
            bad.append((".password_env", f"expected the name of an environment variable, got {password_env!r}"))
        elif isinstance(password_env, str) and password_env not in os.environ:
            bad.append((".password_env", f"the environment variable {password_env} is not set"))
        if username is not None and password_env is None:
            bad.append((".username", "a login needs its password: name the environment variable holding it "
                                     "with password_env"))
        if bad:
            raise KeyProblems(bad)
        return MailTarget(to=tuple(to), sender=sender, host=host, port=port, starttls=starttls,
                          username=username, password_env=password_env)


ALERT_OPTIONS: tuple[Option, ...] = (
    Name("name", "the alert's name, in messages and status.json", required="every alert needs a name"),
    Url("webhook", "POST the events as JSON to this URL (or set email)"),
    Email("email", "send the events as a mail: to, from, host, port, starttls, username, password_env"),
    Globs("charts", "globs over chart names: the charts this alert follows", ["*"]),
    Events("on", "which changes are sent", list(EVENTS)),
    Whole("after", "failed renders in a row before `error` is sent", 1, least=1),
    Duration("repeat", "send again while a chart is still in trouble"),
    Duration("group_wait", "changes within this time go out as one message", "10s"),
    Duration("timeout", "how long one attempt may take: connecting, sending, the answer", "10s", least=0.1,
             most=(300.0, "5m")),
)
ALERT_KEYS = {o.name for o in ALERT_OPTIONS}


@dataclass(frozen=True)
class Alert:
    """One `[[alerts]]` entry as the program uses it."""

    name: str
    webhook: str | None
    email: MailTarget | None
    charts: tuple[str, ...]
    on: tuple[str, ...]
    after: int
    repeat: float | None
    group_wait: float
    timeout: float = 10.0


def load_alerts(table: Any, c: Any) -> tuple[Alert, ...]:
    """The board file's `[[alerts]]` (`table`), each read by the loader's collector `c` (its
    read, add and unknown). Names are unique; each has exactly one of webhook and email."""
    read, add = c.read, c.add
    if not isinstance(table, list):
        add("alerts", "expected an array of tables ([[alerts]])")
        return ()
    alerts, seen = [], {}
    for i, entry in enumerate(table):
        where = f"alerts[{i}]"
        if not isinstance(entry, dict):
            add(where, f"expected a table, got {entry!r}")
            continue
        if isinstance(entry.get("name"), str):
            where = f"alerts[{i}] ({entry['name']})"
        before = len(c.problems)
        c.unknown(where, entry, ALERT_KEYS, {})
        values = read(where, entry, ALERT_OPTIONS)
        ok = len(c.problems) == before
        if ("webhook" in entry) == ("email" in entry):
            add(where, "set either webhook or email (exactly one)")
            ok = False
        name = values["name"]
        if name is not None:
            if name in seen:
                add(f"{where}.name", f"duplicate name {name!r} (also {seen[name]})")
                ok = False
            seen.setdefault(name, where)
        if ok:
            alerts.append(Alert(**values))
    return tuple(alerts)
