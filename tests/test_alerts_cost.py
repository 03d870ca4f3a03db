"""What the alerts cost the daemon on a big board, counted (never timed): a message delivered
changes status.json's `alerts` and so rewrites the pages, and that write must not serialise
every chart's card again when no chart changed (issue 24: at 10,000 charts and a burst of 1,000
errors, the alerts' messages kept rewriting the whole board's index digest, a cost that grew
with the board times the number of messages)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import wait_for
from fakeclock import Clock

from renderer.alerts.service import Alerting
from renderer.board.config import load_board
from renderer.daemon.pagekeeper import PageKeeper
from renderer.pages import model, write
from renderer.store.records import ChartRecord

CHARTS = 2000


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


class Counting:
    """json as renderer.pages.write uses it, counting the bytes it serialises."""

    def __init__(self) -> None:
        self.bytes = 0

    def dumps(self, obj, **kw) -> str:
        text = json.dumps(obj, **kw)
        self.bytes += len(text)
        return text


def test_a_message_sent_rewrites_the_pages_without_a_pass_over_every_card(tmp_path, receiver, monkeypatch):
    url, got = receiver
    (tmp_path / "data").mkdir()
    for i in range(CHARTS):
        (tmp_path / "data" / f"c{i:05d}.txt").write_text("x\n")
    (tmp_path / "plots.py").write_text("def tiny(fig, inputs):\n    pass\n")
    (tmp_path / "plotboard.toml").write_text(
        '[board]\ntitle = "big"\n[[charts]]\nname = "c{stem}"\nforeach = "data/c*.txt"\ninputs = ["{path}"]\n'
        f'plot = "plots:tiny"\n[[alerts]]\nname = "ops"\nwebhook = "{url}"\ngroup_wait = "10s"\n')
    board = load_board(tmp_path / "plotboard.toml")
    assert len(board.charts) == CHARTS
    clock = Clock()
    records = {c.name: ChartRecord(rendered_at=clock(), hash="ab" * 8, renders=1, files=[f"{c.name}.png"])
               for c in board.charts}
    pages = PageKeeper()  # wired as the daemon wires them (renderer.daemon.outward)
    woken = threading.Event()
    with Alerting(board, records, clock, woken.set, lambda: pages.batch.dirty(clock())) as alerting:
        pages.alerts = alerting.shown
        pages.write(board, records, clock())  # the first write: every chart

        chart = board.charts[7]
        rec = records[chart.name]
        rec.error, rec.failed_at, rec.consecutive_failures, rec.failures = "ValueError: x", clock(), 1, 1
        pages.published(clock(), chart, rec, ok=False)
        alerting.changed(chart.name)
        alerting.step()
        pages.write(board, records, clock())  # the render's write: its chart's card changed
        clock.advance(11)  # group_wait
        alerting.step()  # the message goes to its sender
        wait_for(lambda: got and alerting.results, what="the webhook's request and its result")
        alerting.step()  # delivered: status.json's `alerts` says sent = 1
        assert pages.batch.due is not None, "the alerts' counts changed: the pages are due"

        counted = Counting()
        monkeypatch.setattr(write, "json", counted)
        entries = []
        real = model.chart_entry
        monkeypatch.setattr(model, "chart_entry", lambda b, c, *a: entries.append(c.name) or real(b, c, *a))
        pages.write(board, records, clock())

    status = json.loads((board.output / "status.json").read_text())
    assert status["alerts"][0]["sent"] == 1 and len(status["charts"]) == CHARTS
    assert [e["chart"] for e in got[0]["events"]] == [chart.name]
    assert entries == []  # no chart's entry made again
    # What the write serialised besides status.json's bytes: the digests of the few files it
    # looks at, not every card (2,000 cards are about 870 KB of JSON; this write, under 1 KB).
    assert counted.bytes < 10_000, counted.bytes
