"""`[[alerts]]` and `[board] url` in the board file: every mistake is an exit-2 error on one
line naming the file, `alerts[N]` and the key, before anything is written (the real CLI)."""

from __future__ import annotations

import pytest

from conftest import TWO_CHARTS, Board
from test_config import bad, rejected  # noqa: F401 - bad is a fixture

HOOK = '\n[[alerts]]\nname = "ops"\nwebhook = "http://127.0.0.1:9000/x"\n'


def alert(extra: str, base: str = HOOK) -> str:
    return TWO_CHARTS + base + extra.strip() + "\n"


@pytest.mark.parametrize("toml, parts", [
    (alert('on = ["error", "flood"]'), ("alerts[0] (ops).on:", "error, stale, recovered")),
    (alert("after = 0"), ("alerts[0] (ops).after:", "at least 1")),
    (alert('repeat = "often"'), ("alerts[0] (ops).repeat:", "duration")),
    (alert('group_wait = 5'.replace("5", "true")), ("alerts[0] (ops).group_wait:",)),
    (alert('timeout = "50ms"'), ("alerts[0] (ops).timeout:", "at least 100ms")),
    (alert('timeout = "1h"'), ("alerts[0] (ops).timeout:", "at most 5m")),
    (alert('charts = "cpu"'), ("alerts[0] (ops).charts:", "list of strings")),
    (alert('colour = "red"'), ("alerts[0] (ops):", 'unknown key "colour"')),
    (TWO_CHARTS + '\n[[alerts]]\nname = "ops"\n', ("alerts[0] (ops):", "either webhook or email")),
    (alert('email = { to = ["a@b.c"], from = "p@b.c" }'), ("alerts[0] (ops):", "either webhook or email")),
    (TWO_CHARTS + '\n[[alerts]]\nname = "Ops!"\nwebhook = "http://x/"\n', ("alerts[0] (Ops!).name:", "[a-z0-9]")),
    (TWO_CHARTS + '\n[[alerts]]\nwebhook = "http://x/"\n', ("alerts[0].name:", "missing")),
    (TWO_CHARTS + HOOK + HOOK, ("alerts[1] (ops).name:", "duplicate name 'ops'")),
    (TWO_CHARTS + '\n[[alerts]]\nname = "ops"\nwebhook = "file:///etc/passwd"\n',
     ("alerts[0] (ops).webhook:", "http:// or https://")),
    (TWO_CHARTS + '\n[[alerts]]\nname = "ops"\nwebhook = "http://"\n', ("alerts[0] (ops).webhook:",)),
    (TWO_CHARTS.replace("[board]\n", '[board]\nurl = "board.example.com"\n'), ("board.url:", "http://")),
    ('alerts = "yes"\n' + TWO_CHARTS, ("alerts:", "[[alerts]]")),
])
def test_a_mistake_in_alerts_names_the_alert_and_the_key(bad, toml, parts):
    rejected(bad, toml, *parts)


MAIL = '\n[[alerts]]\nname = "mail"\nemail = {{ {} }}\n'


@pytest.mark.parametrize("table, parts", [
    ('to = ["ops@example.com"], from = "p@example.com", password = "hunter2"',
     ("alerts[0] (mail).email.password:", "password_env")),
    ('to = ["ops@example.com"], from = "p@example.com", username = "u"',
     ("alerts[0] (mail).email.username:", "password_env")),
    ('to = ["ops@example.com"], from = "p@example.com", username = "u", password_env = "PLOTBOARD_TEST_UNSET"',
     ("alerts[0] (mail).email.password_env:", "PLOTBOARD_TEST_UNSET", "not set")),
    ('to = "ops@example.com", from = "p@example.com"', ("alerts[0] (mail).email.to:", "list of mail addresses")),
    ('to = ["ops@example.com"]', ("alerts[0] (mail).email.from:",)),
    ('to = ["ops@example.com"], from = "p@example.com", port = 0', ("alerts[0] (mail).email.port:",)),
    ('to = ["ops@example.com"], from = "p@example.com", starttls = "yes"', ("alerts[0] (mail).email.starttls:",)),
    ('to = ["ops@example.com"], from = "p@example.com", tls = true', ("alerts[0] (mail).email.tls:", "unknown key")),
])
def test_a_mistake_in_a_mail_alert_names_the_key_inside_email(bad, table, parts):
    line = rejected(bad, TWO_CHARTS + MAIL.format(table), *parts)
    assert "hunter2" not in line


def test_good_alerts_are_accepted(tmp_path):
    from renderer.board.config import load_board

    b = Board(tmp_path / "b").write(TWO_CHARTS.replace("[board]\n", '[board]\nurl = "https://board.example.com/"\n')
                                    + HOOK + 'charts = ["a", "nothing-*"]\non = ["error"]\nafter = 3\n'
                                    'repeat = "4h"\ngroup_wait = "1s"\n'
                                    + MAIL.format('to = ["ops@example.com"], from = "p@example.com", host = "mx", '
                                                  'port = 587, starttls = true, username = "u", password_env = "PATH"'))
    board = load_board(b.file)
    hook, mail = board.alerts
    assert (hook.name, hook.webhook, hook.charts, hook.on, hook.after, hook.repeat, hook.group_wait) == \
        ("ops", "http://127.0.0.1:9000/x", ("a", "nothing-*"), ("error",), 3, 14400.0, 1.0)
    assert hook.email is None and board.url == "https://board.example.com/"
    assert (mail.email.to, mail.email.sender, mail.email.host, mail.email.port, mail.email.starttls,
            mail.email.username, mail.email.password_env) == (("ops@example.com",), "p@example.com", "mx", 587, True,
                                                              "u", "PATH")
    assert (mail.charts, mail.on, mail.after, mail.repeat, mail.group_wait) == \
        (("*",), ("error", "stale", "recovered"), 1, None, 10.0)
