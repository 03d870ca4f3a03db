"""Mail alerts end to end: a real `plotboard run` (and `plotboard build`) whose `[[alerts]]`
entry mails a real aiosmtpd server on 127.0.0.1 (STARTTLS with a certificate from the test's
CA, AUTH with the password from the environment); each mail parsed with the email package."""

from __future__ import annotations

import email
import email.policy
import re

from conftest import FAST, Board, chart, cli_env, png_problem, wait_for
from test_alert_mail import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    authenticator,
    certificates,
    server_tls,
    smtpd,
)
from test_alerts import PLOTS, alerts_shown


def mail_board(root, port: int, *charts: str, board: str = "") -> Board:
    text = FAST.format(timeout="20s").replace("[board]\n", "[board]\n" + board) + "".join(charts)
    text += (f'\n[[alerts]]\nname = "ops"\ngroup_wait = "300ms"\n'
             f'email = {{ to = ["ops@example.com"], from = "plotboard@example.com", host = "127.0.0.1", '
             f'port = {port}, starttls = true, username = "{USER}", password_env = "PB_TEST_SMTP" }}\n')
    return Board(root).write(text, plots=PLOTS)


def tls_smtpd(smtpd, certificates):  # noqa: F811 - the fixtures
    return smtpd(tls_context=server_tls(certificates), require_starttls=True, auth_required=True,
                 authenticator=authenticator())


def mails(inbox) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m["content"], policy=email.policy.default) for m in inbox.messages]


def inline_image(message: email.message.EmailMessage) -> bytes:
    """The one image the HTML part shows by `cid:`, checked to be a whole PNG."""
    html_part = message.get_body(("html",))
    (cid,) = re.findall(r'src="cid:([^"]+)"', html_part.get_content())
    (image,) = [p for p in message.walk() if p["Content-ID"] == f"<{cid}>"]
    assert image.get_content_type() == "image/png"
    data = image.get_content()
    assert png_problem(data) is None, png_problem(data)
    return data


def test_run_mails_an_error_and_its_recovery_with_the_published_image(tmp_path, daemons, smtpd,  # noqa: F811
                                                                       certificates):  # noqa: F811
    inbox, port = tls_smtpd(smtpd, certificates)
    b = mail_board(tmp_path / "b", port, chart("a", "plots:maybe", "data/a.txt", "history = 2\n"),
                   chart("b", "plots:maybe", "data/b.txt"),
                   board='url = "https://board.example.com/ops/"\n')
    b.data("data/a.txt", "good\n")
    b.data("data/b.txt", "good\n")
    d = daemons(b, env=cli_env(SSL_CERT_FILE=str(certificates["ca.pem"]), PB_TEST_SMTP=PASSWORD))
    shown_at = d.wait_state("a", state="ok")["rendered_at"]
    d.wait_state("b", state="ok")
    b.data("data/a.txt", "fail\n")
    wait_for(lambda: len(inbox.messages) >= 1, 60, f"a mail to arrive ({d.log[-2000:]})")
    (first,) = mails(inbox)
    assert [(m["tls"], m["login"], m["to"]) for m in inbox.messages] == [(True, USER.encode(), ["ops@example.com"])]
    assert first["Subject"] == "[Daemon board] error: a"
    assert "ValueError: told to fail" in first.get_body(("plain",)).get_content()
    assert inline_image(first) == (b.output / "a.png").read_bytes()  # the image shown: the last good one
    moment = "https://board.example.com/ops/#history-a@" + shown_at.replace("-", "").replace(":", "")
    assert re.search(f'<a href="{re.escape(moment)}"><img src="cid:', first.get_body(("html",)).get_content())
    assert f"moment: {moment}" in first.get_body(("plain",)).get_content()
    b.data("data/a.txt", "good again, and longer\n")
    wait_for(lambda: len(inbox.messages) >= 2, 60, f"a second mail to arrive ({d.log[-2000:]})")
    d.wait_state("a", state="ok")
    first, second = mails(inbox)
    assert second["Subject"] == "[Daemon board] recovered: a"
    assert inline_image(second) == (b.output / "a.png").read_bytes() != inline_image(first)
    wait_for(lambda: [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(2, 0)], 60,
             f"status.json to count two mails: {alerts_shown(b)}")
    assert PASSWORD not in d.log and len(inbox.messages) == 2


def test_build_mails_what_changed_before_it_exits(tmp_path, smtpd, certificates):  # noqa: F811
    inbox, port = tls_smtpd(smtpd, certificates)
    b = mail_board(tmp_path / "b", port, chart("a", "plots:maybe", "data/a.txt"))
    env = {"SSL_CERT_FILE": str(certificates["ca.pem"]), "PB_TEST_SMTP": PASSWORD}
    b.data("data/a.txt", "good\n")
    assert b.cli("build", **env).returncode == 0
    assert inbox.messages == []  # a first render is no event
    b.data("data/a.txt", "fail\n")
    result = b.cli("build", **env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (message,) = mails(inbox)
    assert message["Subject"] == "[Daemon board] error: a"
    assert inline_image(message) == (b.output / "a.png").read_bytes()
    assert [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(1, 0)]
