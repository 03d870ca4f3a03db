"""renderer.metrics.board in one process: states judged at the scrape's time (a clock passed in),
windows and left-out family members counted as status.json counts them, and scrapes on other
threads while the loop's thread publishes and reloads."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from conftest import chart, fast_board
from renderer.board.config import load_board
from renderer.metrics.board import BoardMetrics
from renderer.store.records import ChartRecord


def values(metrics: BoardMetrics) -> dict:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def states(metrics: BoardMetrics) -> dict[str, float]:
    return {dict(labels)["state"]: v for (name, labels), v in values(metrics).items() if name == "plotboard_charts"}


def test_states_are_judged_at_the_scrape_and_windows_count_as_one_chart(tmp_path):
    board = load_board(fast_board(tmp_path / "b", chart("a", extra='stale_after = "60s"'),
                                  chart("w", extra='stale_after = "60s"\nwindows = ["1d", "7d"]'),
                                  chart("never")).file)
    now = [1000.0]
    metrics = BoardMetrics(clock=lambda: now[0])
    records = {"a": ChartRecord(rendered_at=1000.0, renders=3), "w": ChartRecord(rendered_at=1000.0, renders=1),
               "w.7d": ChartRecord(rendered_at=1000.0, error="ValueError: x", failures=2)}
    metrics.load(board, records, counts=True)
    assert states(metrics) == {"ok": 1, "stale": 0, "error": 1, "pending": 1}
    v = values(metrics)
    assert v[("plotboard_renders_total", (("result", "ok"),))] == 4
    assert v[("plotboard_renders_total", (("result", "failed"),))] == 2
    assert {dict(k[1])["chart"] for k in v if k[0] == "plotboard_chart_last_success_timestamp_seconds"} == {"a", "w"}

    now[0] = 1060.5  # nothing rendered: a is stale by now, judged at this scrape
    assert states(metrics) == {"ok": 0, "stale": 1, "error": 1, "pending": 1}
    records["w.7d"] = ChartRecord(rendered_at=1060.0, renders=1)
    metrics.published(board.chart("w.7d"), records["w.7d"], True, 0.2)
    assert states(metrics) == {"ok": 0, "stale": 2, "error": 0, "pending": 1}  # w's first window is stale
    v = values(metrics)
    assert v[("plotboard_renders_total", (("result", "ok"),))] == 5
    assert v[("plotboard_render_duration_seconds_bucket", (("le", "0.25"),))] == 1
    assert v[("plotboard_render_duration_seconds_bucket", (("le", "0.1"),))] == 0


def test_scrapes_on_other_threads_while_the_loop_publishes_and_reloads(tmp_path):
    board = load_board(fast_board(tmp_path / "b", *[chart(f"c{i}") for i in range(200)]).file)
    small = load_board(fast_board(tmp_path / "s", *[chart(f"c{i}") for i in range(100)]).file)
    metrics = BoardMetrics(alerts=lambda: [("ops", "sent", 2), ("ops", "failed", 1)])
    metrics.load(board, {}, counts=True)
    stop, problems, scrapes = threading.Event(), [], [0]

    def scrape() -> None:
        try:
            while not stop.is_set():
                v = values(metrics)
                if sum(s for (n, _), s in v.items() if n == "plotboard_charts") not in (100, 200):
                    problems.append(v)
                scrapes[0] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            problems.append(exc)

    threads = [threading.Thread(target=scrape) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(3000):
            current = small if n % 500 >= 250 else board
            name = f"c{n % 100}"
            metrics.published(current.chart(name), ChartRecord(rendered_at=float(n), renders=1), n % 7 != 0, 0.05)
            if n % 250 == 0:
                metrics.load(current, {})
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:1]
    assert scrapes[0] > 0
    v = values(metrics)
    assert v[("plotboard_renders_total", (("result", "ok"),))] + v[("plotboard_renders_total", (("result", "failed"),))] == 3000
    assert v[("plotboard_render_duration_seconds_count", ())] == 3000
    assert v[("plotboard_alerts_sent_total", (("alert", "ops"), ("result", "sent")))] == 2


def test_a_family_member_left_out_of_the_board_counts_as_a_chart_in_error(tmp_path):
    b = fast_board(tmp_path / "b", '\n[[charts]]\nname = "d-{match}"\nforeach = "data/d-*.txt"\nplot = "plots:line"\n'
                   'inputs = ["{path}"]\n')
    for name in ("d-A.txt", "d-a.txt", "d-b.txt"):  # A and a give one name: both are left out
        b.data(f"data/{name}", "1 2 3\n")
    board = load_board(b.file)
    assert board.failed and [c.name for c in board.charts] == ["d-b"]
    metrics = BoardMetrics()
    metrics.load(board, {})
    assert states(metrics) == {"ok": 0, "stale": 0, "error": len(board.failed), "pending": 1}
