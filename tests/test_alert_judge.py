"""The alerts' judge (renderer.alerts.judge) with a made-up clock: which changes each alert
sends, grouping, `after`, `repeat`, `recovered` only after a trouble that was sent, stale with
nothing rendered, and the work following the changes, not the board's size."""

from __future__ import annotations

import textwrap

from fakeclock import Clock

from renderer.alerts.judge import Judge
from renderer.alerts.send import GIVE_UP_AFTER, retry_wait
from renderer.board.config import board_from_data
from renderer.store.records import ChartRecord

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib


def make_board(tmp_path, alerts: str, charts: int = 3, extra: str = 'stale_after = "1m"') -> object:
    (tmp_path / "plots.py").write_text("def line(fig, inputs):\n    pass\n")
    text = '[board]\ntitle = "T"\nurl = "https://board.example.com/ops/"\n'
    for i in range(charts):
        text += f'[[charts]]\nname = "c{i}"\nplot = "plots:line"\n{extra}\n'
    text += textwrap.dedent(alerts)
    return board_from_data(tmp_path / "plotboard.toml", tomllib.loads(text))


HOOK = '[[alerts]]\nname = "ops"\nwebhook = "http://127.0.0.1:9/x"\n'


def ok(rec: ChartRecord, now: float) -> ChartRecord:
    rec.rendered_at, rec.error, rec.consecutive_failures = now, None, 0
    return rec


def fail(rec: ChartRecord, now: float, error: str = "ValueError: boom") -> ChartRecord:
    rec.error, rec.failed_at = error, now
    rec.consecutive_failures += 1
    return rec


def events(messages) -> list[tuple[str, str, str, str]]:
    return [(m.alert, e["event"], e["chart"], e["previous"]) for m in messages for e in m.events]


def started(tmp_path, alerts=HOOK, charts=3, told=None, **kw):
    clock = Clock()
    board = make_board(tmp_path, alerts, charts, **kw)
    records = {f"c{i}": ok(ChartRecord(), clock()) for i in range(charts)}
    judge = Judge(board, records, told if told is not None else {}, clock())
    return clock, board, records, judge


def test_a_failure_is_one_event_after_group_wait_and_recovered_follows_it(tmp_path):
    clock, board, records, judge = started(tmp_path)
    assert judge.tick(clock()) == []  # ok charts: nothing to say
    clock.advance(20)
    assert judge.tick(clock()) == []
    fail(records["c1"], clock())
    judge.changed("c1", clock())
    assert judge.tick(clock()) == []  # held for group_wait (10 s)
    assert judge.next_deadline() == clock() + 10
    clock.advance(10)
    (message,) = judge.tick(clock())
    (event,) = message.events
    assert event == {"event": "error", "chart": "c1", "title": "c1", "group": None, "state": "error",
                     "previous": "ok", "error": "ValueError: boom", "at": event["at"], "image": "c1.png",
                     "url": "https://board.example.com/ops/#c1", "moment": None}
    judge.delivered(message, clock())
    assert judge.told == {"ops": {"c1": ("error", clock())}}
    fail(records["c1"], clock())  # still failing: nothing new
    judge.changed("c1", clock())
    clock.advance(10)
    assert judge.tick(clock()) == []
    ok(records["c1"], clock())
    judge.changed("c1", clock())
    clock.advance(10)
    (message,) = judge.tick(clock())
    assert events([message]) == [("ops", "recovered", "c1", "error")]
    assert message.events[0]["state"] == "ok" and message.events[0]["error"] is None
    judge.delivered(message, clock())
    assert judge.told == {"ops": {}}


def test_a_trouble_undone_within_group_wait_is_not_sent(tmp_path):
    clock, board, records, judge = started(tmp_path)
    fail(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(3)
    ok(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(10)
    assert judge.tick(clock()) == []


def test_after_counts_failures_in_a_row(tmp_path):
    clock, board, records, judge = started(tmp_path, HOOK + "after = 3\n")
    for n in range(2):
        fail(records["c0"], clock())
        judge.changed("c0", clock())
        clock.advance(11)
        assert judge.tick(clock()) == [], n
    fail(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(11)
    assert events(judge.tick(clock())) == [("ops", "error", "c0", "ok")]


def test_recovered_only_after_a_trouble_that_was_sent(tmp_path):
    clock, board, records, judge = started(tmp_path, HOOK + 'on = ["stale", "recovered"]\n')
    fail(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(11)
    assert judge.tick(clock()) == []  # error is not in `on`
    ok(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(11)
    assert judge.tick(clock()) == []  # nothing was sent, so nothing recovered


def test_stale_is_noticed_with_nothing_rendered_and_the_deadline_says_when(tmp_path):
    clock, board, records, judge = started(tmp_path, charts=2)
    t0 = clock()
    assert judge.next_deadline() == t0 + 10  # the start's look at every chart
    clock.advance(10)
    assert judge.tick(clock()) == []
    assert judge.next_deadline() == t0 + 60 + 0.001  # stale_after = 1m
    clock.t = judge.next_deadline()
    assert judge.tick(clock()) == []  # both turned stale: the group opens
    assert judge.next_deadline() == clock() + 10
    clock.advance(10)
    (message,) = judge.tick(clock())
    assert events([message]) == [("ops", "stale", "c0", "ok"), ("ops", "stale", "c1", "ok")]
    assert message.events[0]["at"] == "1970-01-12T13:47:40.000Z"  # rendered_at + stale_after


def test_a_burst_of_failures_is_one_message(tmp_path):
    clock, board, records, judge = started(tmp_path, charts=2000)
    for i in range(1000):
        fail(records[f"c{i}"], clock())
        judge.changed(f"c{i}", clock())
        clock.advance(0.005)
    clock.advance(10)
    messages = judge.tick(clock())
    assert len(messages) == 1 and len(messages[0].events) == 1000


def test_changes_while_a_message_is_being_sent_wait_for_it(tmp_path):
    clock, board, records, judge = started(tmp_path, extra="")
    fail(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(10)
    (first,) = judge.tick(clock())
    fail(records["c1"], clock())
    judge.changed("c1", clock())
    clock.advance(60)
    assert judge.tick(clock()) == []  # the first is still being sent (retried)
    judge.delivered(first, clock())
    assert events(judge.tick(clock())) == [("ops", "error", "c1", "ok")]


def test_a_given_up_message_is_not_tried_again_until_the_chart_changes(tmp_path):
    clock, board, records, judge = started(tmp_path)
    fail(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(10)
    (first,) = judge.tick(clock())
    judge.gave_up(first)
    assert judge.told == {}  # never told: a restart sends it
    fail(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(10)
    assert judge.tick(clock()) == []
    ok(records["c0"], clock())
    judge.changed("c0", clock())
    clock.advance(10)
    assert judge.tick(clock()) == []  # its error never arrived: no recovered either


def test_repeat_sends_again_while_the_trouble_lasts(tmp_path):
    clock, board, records, judge = started(tmp_path, HOOK + 'repeat = "1h"\n', extra="")
    fail(records["c2"], clock())
    judge.changed("c2", clock())
    clock.advance(10)
    (first,) = judge.tick(clock())
    judge.delivered(first, clock())
    assert judge.next_deadline() == clock() + 3600
    clock.advance(3600)
    assert judge.tick(clock()) == []  # a repeat waits for its group too
    clock.advance(10)
    (again,) = judge.tick(clock())
    assert events([again]) == [("ops", "error", "c2", "error")]


def test_a_restart_sends_what_changed_while_down_and_not_what_was_sent(tmp_path):
    clock, board, records, judge = started(tmp_path, extra="")
    fail(records["c0"], clock())
    fail(records["c1"], clock())
    told = {"ops": {"c0": ("error", clock() - 100), "c2": ("error", clock() - 100)}}
    judge = Judge(board, records, told, clock())  # the daemon starting again
    clock.advance(10)
    (message,) = judge.tick(clock())
    assert events([message]) == [("ops", "error", "c1", "ok"), ("ops", "recovered", "c2", "error")]


def test_charts_globs_and_removed_charts(tmp_path):
    two = HOOK + 'charts = ["c1"]\n[[alerts]]\nname = "all"\nwebhook = "http://127.0.0.1:9/y"\n'
    clock, board, records, judge = started(tmp_path, two)
    fail(records["c1"], clock())
    fail(records["c2"], clock())
    judge.changed("c1", clock())
    judge.changed("c2", clock())
    clock.advance(10)
    assert sorted(events(judge.tick(clock()))) == [("all", "error", "c1", "ok"), ("all", "error", "c2", "ok"),
                                                   ("ops", "error", "c1", "ok")]
    # A chart that leaves the board sends nothing, and is forgotten.
    judge.told = {"all": {"c2": ("error", clock())}}
    judge.busy = {}
    smaller = make_board(tmp_path, two, charts=2)
    judge.set_board(smaller, clock())
    assert judge.told == {"all": {}}
    clock.advance(10)
    assert all(e["chart"] != "c2" for m in judge.tick(clock()) for e in m.events)


def test_the_work_follows_the_changes(tmp_path, monkeypatch):
    """At 10,000 charts, a change and a turn of the loop judge that chart alone: nothing looks at
    every chart (counted, not timed)."""
    from renderer.alerts import judge as module

    clock, board, records, judge = started(tmp_path, charts=10000)
    judged = []
    real = module.judge_chart
    monkeypatch.setattr(module, "judge_chart", lambda b, name, *a: judged.append(name) or real(b, name, *a))
    for _ in range(100):
        fail(records["c1"], clock())
        judge.changed("c1", clock())
        judge.tick(clock())
        judge.next_deadline()
        clock.advance(0.01)
    assert set(judged) == {"c1"} and len(judged) == 100


def test_retries_go_on_for_at_least_ten_minutes_then_give_up():
    t, tries = 0.0, 0
    while (wait := retry_wait(0.0, t, tries + 1)) is not None:
        tries += 1
        t += wait + 10  # each attempt may take its timeout
    assert t >= GIVE_UP_AFTER >= 600
    assert tries >= 8


def test_a_chart_that_never_rendered_and_fails_is_an_error_from_pending(tmp_path):
    clock, board, records, judge = started(tmp_path, extra="")
    records["c0"] = fail(ChartRecord(), clock())
    judge = Judge(board, records, {}, clock())
    records["c1"] = ChartRecord()
    judge.changed("c1", clock())
    fail(records["c1"], clock())
    judge.changed("c1", clock())
    clock.advance(10)
    assert events(judge.tick(clock())) == [("ops", "error", "c0", "pending"), ("ops", "error", "c1", "pending")]
