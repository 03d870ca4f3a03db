"""Mail alerts (renderer/alerts/mail.py) against a real SMTP server on 127.0.0.1 (aiosmtpd):
the message as received and parsed with the email package (subject, plain text, HTML, `cid:`
images that are whole PNGs, at most 10), STARTTLS with a certificate from a CA the test makes
(SSL_CERT_FILE), AUTH LOGIN and PLAIN with the password from the environment, a wrong password
whose text never reaches the exception, servers that never answer or dribble, hostile titles."""

from __future__ import annotations

import email
import email.policy
import io
import logging
import os
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import matplotlib.image
import psutil
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import free_port, png_problem
from matplotlib.figure import Figure

from renderer.alerts import mail as mail_module
from renderer.alerts.mail import MAX_IMAGES, MailError, compose, send
from renderer.board.alert_spec import MailTarget

PASSWORD = "hunter2-Secret-7f3a"
USER = "plotboard"


class Inbox:
    """aiosmtpd's handler: every message delivered, with what the session knew."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append({"content": envelope.content, "from": envelope.mail_from,
                              "to": list(envelope.rcpt_tos), "tls": session.ssl is not None,
                              "login": getattr(session.auth_data, "login", None)})
        return "250 OK"


class Picky(Inbox):
    """Refuses one recipient."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address == "oncall@example.org":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def smtpd():
    """start(**SMTP options) → (Inbox, port): a real aiosmtpd on 127.0.0.1, stopped after the test."""
    controllers = []

    def start(handler: type[Inbox] = Inbox, **kw) -> tuple[Inbox, int]:
        inbox, port = handler(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def authenticator(echo: bool = False):
    """Accepts USER / PASSWORD; a wrong password gets 535 (with `echo`, the password it was sent)."""
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
                and auth_data.password == PASSWORD.encode():
            return AuthResult(success=True, auth_data=auth_data)
        said = f" for {auth_data.password.decode()}" if echo else ""
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad credentials{said}")
    return check


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    """A CA (ca.pem) and a certificate it signed for IP 127.0.0.1 (server.pem, server.key),
    and another CA (other.pem) that signed nothing here, made with the openssl command."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=120)

    for ca in ("ca", "other"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=plotboard test {ca}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {name: d / name for name in ("ca.pem", "other.pem", "server.pem", "server.key")}


def server_tls(certificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates["server.pem"], certificates["server.key"])
    return context


def png(path: Path, n: int) -> Path:
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, n, n % 3])
    fig.savefig(path, format="png")
    return path


def event(chart: str, kind: str = "error", title: str | None = None, error: str | None = "ValueError: boom") -> dict:
    """An event shaped like DESIGN.md's webhook events."""
    return {"event": kind, "chart": chart, "title": title or f"Title of {chart}", "group": None,
            "state": "ok" if kind == "recovered" else kind, "previous": "error" if kind == "recovered" else "ok",
            "error": error if kind == "error" else None, "at": "2026-12-06T12:00:00.000Z",
            "image": f"{chart}.png", "url": f"https://board.example.com/#{chart}"}


def connections_to(port: int) -> list:
    """This process's TCP connections to 127.0.0.1:port that are still open."""
    return [c for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == port and c.status != psutil.CONN_CLOSE]


def target(port: int, **kw) -> MailTarget:
    return MailTarget(to=("ops@example.com", "oncall@example.org"), sender="plotboard@example.com",
                      host="127.0.0.1", port=port, **kw)


def received(inbox: Inbox) -> email.message.EmailMessage:
    assert len(inbox.messages) == 1, inbox.messages
    return email.message_from_bytes(inbox.messages[0]["content"], policy=email.policy.default)


def test_mail_holds_subject_text_html_and_at_most_ten_inline_pngs(smtpd, tmp_path):
    inbox, port = smtpd()
    out = tmp_path / "out"
    out.mkdir()
    images = {f"c{i:02}": png(out / f"c{i:02}.png", i) for i in range(12)}
    os.mkfifo(out / "fifo.png")  # a FIFO, a folder, a file that is no PNG, a missing file:
    (out / "folder.png").mkdir()  # those charts go without an image, and nothing blocks or raises
    (out / "text.png").write_text("not a png")
    images.update({"fifo": out / "fifo.png", "folder": out / "folder.png", "text": out / "text.png",
                   "missing": out / "missing.png"})
    charts = ["cpu", "disk-a", "fifo", "folder", "text", "missing"] + [f"c{i:02}" for i in range(12)] \
        + [f"disk-{i}" for i in range(22)]
    events = [event(c) for c in charts] + [event("cpu", "recovered")]  # cpu twice: one image
    images["cpu"] = png(out / "cpu.png", 99)

    send(target(port), compose(target(port), "Ops board", "ops", events, images), timeout=30)

    delivered = inbox.messages[0] if inbox.messages else {}
    assert delivered.get("from") == "plotboard@example.com"
    assert delivered.get("to") == ["ops@example.com", "oncall@example.org"]
    message = received(inbox)
    subject = message["Subject"]
    assert subject.startswith("[Ops board] error, recovered: cpu, disk-a, fifo, "), subject
    assert "\n" not in subject and "\r" not in subject
    named = subject.split(": ", 1)[1].rsplit(" (+", 1)[0].split(", ")
    assert subject.endswith(f" (+{len(charts) - len(named)} more)") and len(named) < len(charts), subject
    assert message["To"] == "ops@example.com, oncall@example.org" and message["From"] == "plotboard@example.com"
    assert message["Date"] is not None and re.fullmatch(r"<[^<>@\s]+@example\.com>", message["Message-ID"])

    # the standard arrangement: alternative(text/plain, related(text/html, image/png…))
    assert message.get_content_type() == "multipart/alternative"
    plain_part, related = message.get_payload()
    assert plain_part.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *image_parts = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert message.get_body(("plain",)) is plain_part and message.get_body(("html",)) is html_part

    plain = plain_part.get_content()
    for c in charts:
        assert f"error: {c} (Title of {c})" in plain
    assert "recovered: cpu (Title of cpu)" in plain and "state: ok (was error)" in plain
    assert "ValueError: boom" in plain and "at: 2026-12-06T12:00:00.000Z" in plain
    assert "url: https://board.example.com/#disk-a" in plain
    assert "not a regular file but a FIFO" in plain and "not a PNG" in plain
    assert "3 more images left out (at most 10 per mail)" in plain  # c09, c10, c11 (cpu took one)

    html = html_part.get_content()
    assert len(image_parts) == MAX_IMAGES
    referenced = re.findall(r'src="cid:([^"]+)"', html)
    assert len(referenced) == MAX_IMAGES
    expected = {images[c].read_bytes() for c in ["cpu"] + [f"c{i:02}" for i in range(9)]}
    for part in image_parts:
        assert part.get_content_type() == "image/png"
        cid = part["Content-ID"].strip("<>")
        assert cid in referenced
        data = part.get_content()
        assert png_problem(data) is None
        assert matplotlib.image.imread(io.BytesIO(data), format="png").ndim == 3
        expected.discard(data)
    assert expected == set(), "every attached image is a chart's current PNG, cpu's once"
    assert '<a href="https://board.example.com/#cpu">Title of cpu</a>' in html
    assert "3 more images left out" in html and "not a regular file but a FIFO" in html


def test_images_stop_before_the_mail_passes_its_size_budget(smtpd, tmp_path, monkeypatch):
    inbox, port = smtpd()
    images = {c: png(tmp_path / f"{c}.png", n) for n, c in enumerate(["a", "b", "c"])}
    budget = images["a"].stat().st_size + images["b"].stat().st_size
    monkeypatch.setattr(mail_module, "IMAGE_BYTES", budget)
    send(target(port), compose(target(port), "Ops board", "ops", [event(c) for c in images], images), timeout=30)
    message = received(inbox)
    attached = [p.get_content() for p in message.walk() if p.get_content_type() == "image/png"]
    assert sorted(attached) == sorted({images["a"].read_bytes(), images["b"].read_bytes()})
    assert "no image: the mail's images would pass" in message.get_body(("plain",)).get_content()
    assert "images would pass" in message.get_body(("html",)).get_content()


def test_a_recipient_refused_is_logged_and_the_others_get_the_mail_once(smtpd, caplog):
    inbox, port = smtpd(Picky)
    with caplog.at_level(logging.WARNING, logger="plotboard"):
        send(target(port), compose(target(port), "Ops board", "ops", [event("cpu")], {}), timeout=30)
    assert [m["to"] for m in inbox.messages] == [["ops@example.com"]]
    assert any("oncall@example.org" in r.getMessage() and "550" in r.getMessage() for r in caplog.records)


def test_hostile_titles_and_errors_stay_text_and_headers_one_line(smtpd, tmp_path):
    inbox, port = smtpd()
    hostile = "<script>alert(1)</script>\r\nBcc: victim@example.net\n\nbody"
    events = [event("cpu", title=hostile, error="</pre><img src=x onerror=alert(2)>\nX-Evil: 1"),
              {**event("disk"), "url": "javascript:alert(3)"}]
    send(target(port), compose(target(port), "Ops ✓\r\nX-Injected: yes", "ops", events,
                               {"cpu": png(tmp_path / "cpu.png", 1)}), timeout=30)

    raw = inbox.messages[0]["content"] if inbox.messages else b""
    headers = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    assert not re.search(rb"^(X-Injected|X-Evil|Bcc):", headers, re.MULTILINE | re.IGNORECASE), headers
    assert inbox.messages[0]["to"] == ["ops@example.com", "oncall@example.org"]
    message = received(inbox)
    assert message["Subject"] == "[Ops ✓ X-Injected: yes] error: cpu, disk"
    html = message.get_body(("html",)).get_content()
    assert "<script" not in html and "<img src=x" not in html and "javascript:" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Bcc: victim@example.net body" in html
    assert "&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt; X-Evil: 1" in html
    plain = message.get_body(("plain",)).get_content()
    assert "error: cpu (<script>alert(1)</script> Bcc: victim@example.net body)" in plain
    assert not re.search(r"^(Bcc|X-Evil):", plain, re.MULTILINE)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_verified_with_ssl_cert_file_and_login_from_password_env(
        smtpd, certificates, monkeypatch, mechanism):
    inbox, port = smtpd(tls_context=server_tls(certificates), require_starttls=True, auth_required=True,
                        authenticator=authenticator(),
                        auth_exclude_mechanism=["PLAIN" if mechanism == "LOGIN" else "LOGIN"])
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca.pem"]))
    monkeypatch.setenv("PLOTBOARD_TEST_SMTP", PASSWORD)
    mail = target(port, starttls=True, username=USER, password_env="PLOTBOARD_TEST_SMTP")
    send(mail, compose(mail, "Ops board", "ops", [event("cpu")], {}), timeout=30)
    assert [(m["tls"], m["login"]) for m in inbox.messages] == [(True, USER.encode())]
    assert connections_to(port) == []
    assert received(inbox)["Subject"] == "[Ops board] error: cpu"


def test_starttls_refuses_a_certificate_no_trusted_ca_signed(smtpd, certificates, monkeypatch):
    inbox, port = smtpd(tls_context=server_tls(certificates), require_starttls=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["other.pem"]))
    mail = target(port, starttls=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        send(mail, compose(mail, "Ops board", "ops", [event("cpu")], {}), timeout=30)
    assert inbox.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("echo", [False, True], ids=["plain-reply", "server-echoes-password"])
def test_wrong_password_fails_without_the_password_in_the_exception(smtpd, monkeypatch, echo):
    inbox, port = smtpd(auth_required=True, auth_require_tls=False, authenticator=authenticator(echo))
    wrong = PASSWORD + "-wrong"
    monkeypatch.setenv("PLOTBOARD_TEST_SMTP", wrong)
    mail = target(port, username=USER, password_env="PLOTBOARD_TEST_SMTP")
    with pytest.raises(smtplib.SMTPException) as caught:
        send(mail, compose(mail, "Ops board", "ops", [event("cpu")], {}), timeout=30)
    shown = [str(caught.value), repr(caught.value), str(caught.getrepr(chain=True))]
    assert "535" in shown[0]
    for text in shown:
        assert PASSWORD not in text and "hunter2" not in text
    assert inbox.messages == []
    assert connections_to(port) == []


def test_missing_password_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PLOTBOARD_TEST_SMTP", raising=False)
    mail = target(1, username=USER, password_env="PLOTBOARD_TEST_SMTP")
    with pytest.raises(MailError, match=r"^password_env: the environment variable PLOTBOARD_TEST_SMTP is not set"):
        send(mail, compose(mail, "Ops board", "ops", [event("cpu")], {}), timeout=30)


def test_a_server_that_accepts_and_never_answers_fails_within_the_timeout_and_is_closed():
    with socket.create_server(("127.0.0.1", 0)) as listener:  # the kernel accepts; nobody answers
        mail = target(listener.getsockname()[1])
        started = time.monotonic()
        with pytest.raises((OSError, smtplib.SMTPException)):
            send(mail, compose(mail, "Ops board", "ops", [event("cpu")], {}), timeout=1)
        assert time.monotonic() - started < 60
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(60)
            assert connection.recv(100) == b"", "the client closed its connection"


def test_a_server_that_dribbles_its_replies_fails_within_the_timeout():
    """Each line of the reply to EHLO comes well within the timeout, so only a deadline for the
    whole exchange ends it: smtplib's own timeout is per receive."""
    stop = threading.Event()

    def dribble(listener: socket.socket) -> None:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(60)
            until = time.monotonic() + 90  # then the test fails on its time instead of hanging
            try:
                connection.sendall(b"220 slow.example.com\r\n")
                connection.recv(1000)
                while not stop.wait(0.2) and time.monotonic() < until:
                    connection.sendall(b"250-still thinking\r\n")
            except OSError:
                pass  # the client went away

    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=dribble, args=(listener,))
        thread.start()
        try:
            mail = target(listener.getsockname()[1])
            started = time.monotonic()
            with pytest.raises((OSError, smtplib.SMTPException)):
                send(mail, compose(mail, "Ops board", "ops", [event("cpu")], {}), timeout=2)
            assert time.monotonic() - started < 60
        finally:
            stop.set()
            thread.join(60)
