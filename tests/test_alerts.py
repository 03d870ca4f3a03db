"""Alerts end to end: a real `plotboard run` (or `build`) and real webhook receivers on
127.0.0.1 (http.server in a thread of the test): error, stale and recovered; a burst as one
request; a receiver that answers 500, one that refuses, one that hangs; a restart; cron."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import FAST, Board, chart, free_port, wait_for

PLOTS = '''
def maybe(fig, inputs, **params):
    text = open(inputs[0]).read() if inputs else ""
    if "fail" in text:
        raise ValueError("told to fail")
    ax = fig.add_subplot()
    ax.plot([1, 2, len(text)])
'''


class Receiver:
    """A webhook receiver: records each POST's JSON body; answers `answers` in turn (then 200),
    or with `hang`, accepts and never answers (until closed)."""

    def __init__(self, answers: list[int] | None = None, hang: bool = False) -> None:
        self.bodies: list[dict] = []
        self.types: list[str] = []
        self.answers = list(answers or [])
        self.hang = hang
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                receiver.types.append(self.headers["Content-Type"])
                if receiver.hang:
                    receiver.release.wait(120)
                    return
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[tuple[str, str]]:
        return [(e["event"], e["chart"]) for body in self.bodies for e in body["events"]]

    def wait(self, *expected: tuple[str, str], timeout: float = 60) -> None:
        wait_for(lambda: all(e in self.events() for e in expected), timeout,
                 f"the receiver to get {expected} (got {self.events()})")

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def alert_board(root, url: str, *charts: str, group_wait: str = "300ms", board: str = "") -> Board:
    text = FAST.format(timeout="20s").replace("[board]\n", "[board]\n" + board)
    text += "".join(charts)
    text += f'\n[[alerts]]\nname = "ops"\nwebhook = "{url}"\ngroup_wait = "{group_wait}"\n'
    return Board(root).write(text, plots=PLOTS)


def alerts_shown(b: Board) -> list[dict]:
    try:
        return b.status().get("alerts") or []
    except (OSError, ValueError):
        return []


def test_error_stale_and_recovered_reach_a_webhook(tmp_path, daemons, receivers):
    r = receivers()
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"),
                    chart("s", "plots:maybe", "data/s.txt", 'stale_after = "3s"\n'),
                    board='url = "https://board.example.com/ops/"\n')
    b.data("data/a.txt", "good\n")
    b.data("data/s.txt", "good\n")
    d = daemons(b)
    d.wait_state("a", state="ok")
    r.wait(("stale", "s"))  # with nothing rendered: the daemon notices it by itself
    assert r.events() == [("stale", "s")], "a first render is no event"
    b.data("data/a.txt", "fail\n")
    r.wait(("error", "a"))
    b.data("data/a.txt", "good again\n")
    r.wait(("recovered", "a"))
    b.data("data/s.txt", "fresh\n")
    r.wait(("recovered", "s"))
    assert sorted(r.events()) == [("error", "a"), ("recovered", "a"), ("recovered", "s"), ("stale", "s")]
    assert set(r.types) == {"application/json"}
    error = next(e for body in r.bodies for e in body["events"] if e["event"] == "error")
    assert set(r.bodies[0]) == {"board", "alert", "events"}
    assert (r.bodies[0]["board"], r.bodies[0]["alert"]) == ("Daemon board", "ops")
    assert {k: error[k] for k in error if k != "at"} == {
        "event": "error", "chart": "a", "title": "a", "group": None, "state": "error", "previous": "ok",
        "error": "ValueError: told to fail", "image": "a.png", "url": "https://board.example.com/ops/#a",
        "moment": None}
    assert error["at"].endswith("Z") and len(error["at"]) == 24
    wait_for(lambda: [(x["name"], x["sent"], x["failed"], x["last_error"]) for x in alerts_shown(b)]
             == [("ops", len(r.bodies), 0, None)], 60, f"status.json to count the messages: {alerts_shown(b)}")
    assert alerts_shown(b)[0]["last_sent_at"].endswith("Z")
    assert "s3cret" not in d.log


def test_a_burst_of_failures_is_one_request(tmp_path, daemons, receivers):
    r = receivers()
    many = [chart(f"c{i:02d}", "plots:maybe", "data/shared.txt") for i in range(60)]
    b = alert_board(tmp_path / "b", r.url, *many, group_wait="8s")  # failing renders raise at once: 60 take well under 8 s
    b.data("data/shared.txt", "good\n")
    d = daemons(b)
    wait_for(lambda: len([c for c in d.charts() if c["state"] == "ok"]) == 60, 120, "every chart to render")
    b.data("data/shared.txt", "fail\n")
    r.wait(*[("error", f"c{i:02d}") for i in range(60)], timeout=120)
    assert len(r.bodies) <= 2, [len(body["events"]) for body in r.bodies]


def test_a_500_is_retried_and_counted(tmp_path, daemons, receivers):
    r = receivers(answers=[500])
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"))
    b.data("data/a.txt", "fail\n")
    d = daemons(b)
    wait_for(lambda: [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(1, 1)], 60,
             f"status.json to count one failure and one message sent: {alerts_shown(b)}")
    assert alerts_shown(b)[0]["last_error"].startswith("HTTP 500")
    assert len(r.bodies) == 2 and r.bodies[0] == r.bodies[1]
    assert r.events()[0] == ("error", "a")
    assert "alert ops: sending 1 event(s) failed: HTTP 500" in d.log


def test_a_receiver_that_refuses_or_hangs_costs_nothing_else(tmp_path, daemons, receivers):
    hung, good = receivers(hang=True), receivers()
    refused = f"http://127.0.0.1:{free_port()}/nobody"
    text = FAST.format(timeout="20s") + chart("a", "plots:maybe", "data/a.txt") + chart("b", "plots:maybe", "data/b.txt")
    for name, url in (("hung", hung.url), ("refused", refused), ("good", good.url)):
        text += f'\n[[alerts]]\nname = "{name}"\nwebhook = "{url}"\ngroup_wait = "200ms"\ncharts = ["a"]\ntimeout = "1s"\n'
    b = Board(tmp_path / "b").write(text, plots=PLOTS)
    b.data("data/a.txt", "good\n")
    b.data("data/b.txt", "good\n")
    d = daemons(b)
    d.wait_state("a", state="ok")
    b.data("data/a.txt", "fail\n")
    good.wait(("error", "a"))  # another alert's receiver hanging holds nothing up
    wait_for(lambda: hung.bodies, 60, "the hanging receiver to be called")
    before = d.state("b")["renders"]
    b.data("data/b.txt", "still rendering\n")  # renders and pages go on meanwhile
    d.wait_state("b", renders=before + 1)

    def counted() -> dict:
        shown = {x["name"]: x for x in alerts_shown(b)}
        return shown if shown["hung"]["failed"] and shown["refused"]["failed"] else None
    shown = wait_for(counted, 60, f"status.json to count the failures: {alerts_shown(b)}")
    assert "refused" in shown["refused"]["last_error"].lower()
    assert shown["hung"]["last_error"] == "timed out after 1 s"  # the alert's own timeout
    assert shown["good"]["sent"] == 1 and shown["good"]["failed"] == 0


def test_a_restart_sends_nothing_twice_and_what_changed_meanwhile(tmp_path, daemons, receivers):
    r = receivers()
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"),
                    chart("b", "plots:maybe", "data/b.txt"))
    b.data("data/a.txt", "fail\n")
    b.data("data/b.txt", "good\n")
    d = daemons(b)
    r.wait(("error", "a"))
    wait_for(lambda: [x["sent"] for x in alerts_shown(b)] == [1], 60, "status.json to count the message")
    assert d.stop() == 0
    b.data("data/b.txt", "fail\n")  # changes while no daemon runs
    b.data("data/a.txt", "good\n")
    d = daemons(b)
    r.wait(("error", "b"), ("recovered", "a"))
    d.wait_state("b", state="error")
    wait_for(lambda: [x["sent"] for x in alerts_shown(b)] == [len(r.bodies)], 60, "status.json to count them")
    assert sorted(r.events()) == [("error", "a"), ("error", "b"), ("recovered", "a")]  # a's error once
    assert d.stop() == 0
    d = daemons(b)  # nothing changed: nothing sent
    d.wait_state("b", state="error")
    b.data("data/a.txt", "fail\n")
    r.wait(("error", "a"), timeout=60)
    wait_for(lambda: r.events().count(("error", "a")) == 2, 60, "a's second error")
    assert r.events().count(("error", "b")) == 1


def test_build_sends_what_changed_since_the_last_build_once(tmp_path, receivers):
    r = receivers(answers=[503] * 30)
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"))
    b.data("data/a.txt", "good\n")
    r.answers = []
    assert b.cli("build").returncode == 0
    assert r.bodies == []  # a first render is no event
    b.data("data/a.txt", "fail\n")
    assert b.cli("build").returncode == 1
    assert r.events() == [("error", "a")]  # sent before the build exits
    assert b.cli("build").returncode == 1
    assert r.events() == [("error", "a")]  # nothing sent twice
    b.data("data/a.txt", "good\n")
    r.answers = [503] * 100  # the receiver is down for this build
    result = b.cli("build")
    assert result.returncode == 0
    assert "the next build tries again" in result.stderr
    (shown,) = alerts_shown(b)
    assert shown["failed"] >= 1 and shown["last_error"].startswith("HTTP 503") and shown["sent"] == 1
    r.answers = []
    assert b.cli("build").returncode == 0  # nothing rendered, the recovery still due
    assert r.events()[-1] == ("recovered", "a")
    assert alerts_shown(b)[0]["sent"] == 2


def test_build_hands_a_mail_alert_its_target_events_and_images(tmp_path, monkeypatch):
    """The mail's side of a build (in this process; the SMTP exchange is renderer.alerts.mail's):
    the alert's MailTarget, the events and the charts' current PNGs reach compose and send."""
    from renderer.alerts import mail
    from renderer.board.alert_spec import MailTarget
    from renderer.board.config import load_board
    from renderer.build import build

    text = FAST.format(timeout="20s") + chart("a", "plots:maybe", "data/a.txt") + chart("b", "plots:maybe", "data/b.txt")
    text += ('\n[[alerts]]\nname = "mail"\nemail = { to = ["ops@example.com"], from = "pb@example.com", '
             'host = "127.0.0.1", port = 2525 }\n')
    b = Board(tmp_path / "b").write(text, plots=PLOTS)
    b.data("data/a.txt", "good\n")
    b.data("data/b.txt", "good\n")
    assert build(load_board(b.file)).ok
    b.data("data/a.txt", "fail\n")
    b.data("data/b.txt", "fail\n")
    seen = []
    monkeypatch.setattr(mail, "compose", lambda target, title, alert, events, images:
                        seen.append((target, title, alert, events, images)) or "MESSAGE")
    monkeypatch.setattr(mail, "send", lambda target, message, timeout: seen.append((target, message, timeout)))
    assert not build(load_board(b.file)).ok
    (target, title, alert, events, images), sent = seen
    assert target == MailTarget(to=("ops@example.com",), sender="pb@example.com", host="127.0.0.1", port=2525)
    assert (title, alert) == ("Daemon board", "mail")
    assert [(e["event"], e["chart"], e["error"]) for e in events] == [("error", "a", "ValueError: told to fail"),
                                                                      ("error", "b", "ValueError: told to fail")]
    assert images == {"a": b.output / "a.png", "b": b.output / "b.png"}
    assert sent[:2] == (target, "MESSAGE") and 0 < sent[2] <= 10
    assert [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(1, 0)]


def test_a_reload_follows_the_new_alerts(tmp_path, daemons, receivers):
    """A reload that changes an alert's webhook while its message hangs: the new receiver gets it."""
    import signal

    first, second = receivers(hang=True), receivers()
    b = alert_board(tmp_path / "b", first.url, chart("a", "plots:maybe", "data/a.txt"),
                    chart("b", "plots:maybe", "data/b.txt"))
    b.data("data/a.txt", "fail\n")
    b.data("data/b.txt", "good\n")
    d = daemons(b)
    wait_for(lambda: first.bodies, 60, "the first receiver to be called")
    b.file.write_text(b.file.read_text().replace(first.url, second.url))
    d.send(signal.SIGHUP)
    d.wait_log("reloaded")
    b.data("data/b.txt", "fail\n")
    second.wait(("error", "a"), ("error", "b"))
    assert sorted(second.events()) == [("error", "a"), ("error", "b")]


@pytest.mark.parametrize("text", ['{"alerts": {"ops": {"told": {"a": ["error", "soon"], "b": 7}, "sent": -1}}}',
                                  '[1, 2', '{"alerts": []}', '{"version": 1, "alerts": {"ops": "x"}}'])
def test_alerts_bookkeeping_of_any_shape_never_stops_a_build(tmp_path, receivers, text):
    r = receivers()
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"))
    b.data("data/a.txt", "fail\n")
    (b.root / ".plotboard").mkdir()
    (b.root / ".plotboard" / "alerts.json").write_text(text)
    result = b.cli("build")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "alerts.json" in result.stderr  # said once, as a warning
    assert r.events() == [("error", "a")]
    assert [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(1, 0)]


def test_a_build_handed_to_the_daemon_leaves_the_sending_to_it(tmp_path, daemons, receivers):
    r = receivers()
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"))
    b.data("data/a.txt", "fail\n")
    d = daemons(b)
    r.wait(("error", "a"))
    result = b.cli("build")
    assert result.returncode == 1 and "plotboard run" in result.stderr + result.stdout, result.stderr
    b.data("data/a.txt", "good\n")
    assert b.cli("build").returncode == 0  # the daemon renders it (if its watcher has not already)
    r.wait(("recovered", "a"))
    d.wait_state("a", state="ok")
    wait_for(lambda: [x["sent"] for x in alerts_shown(b)] == [2], 60, "status.json to count two messages")
    assert r.events() == [("error", "a"), ("recovered", "a")]
