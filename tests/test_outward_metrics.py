"""The metrics of what the daemon sends out, end to end: `plotboard_alerts_sent_total` counts a
delivered webhook message (result="ok") and a failed attempt (result="failed"), scraped from a
real `run --serve` and read from `build --metrics-file` (from .plotboard/alerts.json); and
`plotboard_publish_pending_files` is above 0 while the object store (moto's server) is down and
0 once it is back."""

from __future__ import annotations

import pytest
from conftest import chart, fast_board, free_port, wait_for
from daemon_helpers import cli_env
from moto_store import Store, env
from test_alerts import alert_board, alerts_shown, receivers  # noqa: F401 - the fixture
from test_metrics import samples, scrape


def sent(values: dict, result: str, alert: str = "ops") -> float | None:
    return values.get(("plotboard_alerts_sent_total", (("alert", alert), ("result", result))))


def test_run_counts_a_failed_attempt_and_a_delivered_message(tmp_path, daemons, receivers):  # noqa: F811
    r = receivers(answers=[500])
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"))
    b.data("data/a.txt", "good\n")
    port = free_port()
    d = daemons(b, "--serve", f"127.0.0.1:{port}")
    d.wait_state("a", state="ok")
    values = wait_for(lambda: (v := scrape(port)) and v, 60, "the daemon to answer")
    assert (sent(values, "ok"), sent(values, "failed")) == (0, 0)
    b.data("data/a.txt", "fail\n")
    r.wait(("error", "a"))
    values = wait_for(lambda: (v := scrape(port)) and sent(v, "ok") == 1 and v, 60,
                      f"the delivered message to be counted ({r.bodies})")
    assert sent(values, "failed") == 1 and len(r.bodies) == 2  # the 500, then the message again
    wait_for(lambda: [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(1, 1)], 60,
             f"status.json to say the same ({alerts_shown(b)})")


def test_build_metrics_file_counts_what_alerts_json_holds(tmp_path, receivers):  # noqa: F811
    r = receivers()
    b = alert_board(tmp_path / "b", r.url, chart("a", "plots:maybe", "data/a.txt"))
    target = tmp_path / "plotboard.prom"
    b.data("data/a.txt", "good\n")
    assert b.cli("build", "--metrics-file", str(target)).returncode == 0
    assert (sent(samples(target.read_text()), "ok"), sent(samples(target.read_text()), "failed")) == (0, 0)
    r.answers = [503]
    b.data("data/a.txt", "fail\n")
    result = b.cli("build", "--metrics-file", str(target))
    assert result.returncode == 1, result.stderr
    assert r.events() == [("error", "a"), ("error", "a")]  # the 503, then the message again
    values = samples(target.read_text())
    assert (sent(values, "ok"), sent(values, "failed")) == (1, 1)
    assert b.cli("build", "--metrics-file", str(target)).returncode == 1  # nothing sent: the same counts
    values = samples(target.read_text())
    assert (sent(values, "ok"), sent(values, "failed")) == (1, 1)
    assert [(x["sent"], x["failed"]) for x in alerts_shown(b)] == [(1, 1)]


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def pending(port: int) -> float | None:
    try:
        return scrape(port).get(("plotboard_publish_pending_files", ()))
    except OSError:
        return None


def test_publish_pending_files_while_the_store_is_down(tmp_path, daemons, store):
    b = fast_board(tmp_path / "b", chart("a", inputs="data/a.txt"))
    b.write(b.file.read_text() + store.toml(), plots=(b.root / "plots.py").read_text())
    b.data("data/a.txt", "1 2 3\n")
    port = free_port()
    d = daemons(b, "--serve", f"127.0.0.1:{port}", env=cli_env(**env()))
    wait_for(lambda: "a.png" in store.keys() and pending(port) == 0, 60, "the first mirror, nothing pending")
    store.stop()
    before = d.image("a")
    b.data("data/a.txt", "3 1 2 5\n")
    d.new_image("a", before)
    wait_for(lambda: (pending(port) or 0) > 0, 60, f"files pending while the store is down ({pending(port)})")
    store.start()
    wait_for(lambda: pending(port) == 0, 60, f"nothing pending once the store is back ({pending(port)})")
    assert store.body("a.png") == (b.output / "a.png").read_bytes()
    assert d.stop() == 0
