"""Prometheus metrics for real: `plotboard run --serve` scraped over HTTP and parsed with
prometheus-client's own parser, `promtool check metrics` on what it answers, `build
--metrics-file` for node_exporter's textfile collector, and --serve's [HOST:]PORT."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import IN_CI, chart, fast_board, free_port, wait_for, write_data
from renderer import __version__
from renderer.pages.status import parse_iso

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def scrape_text(port: int, host: str = "127.0.0.1") -> tuple[str, str]:
    """(Content-Type, body) of GET /metrics."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with urllib.request.urlopen(f"http://{netloc}/metrics", timeout=30) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    return samples(scrape_text(port)[1])


def by_state(values: dict) -> dict[str, float]:
    return {dict(labels)["state"]: v for (name, labels), v in values.items() if name == "plotboard_charts"}


def renders(values: dict, result: str) -> float:
    return values[("plotboard_renders_total", (("result", result),))]


def last_success(values: dict) -> dict[str, float]:
    return {dict(labels)["chart"]: v for (name, labels), v in values.items()
            if name == "plotboard_chart_last_success_timestamp_seconds"}


def require(path: str) -> str:
    """The binary, or a skip outside CI (a failure in CI: scripts/test.sh installs it)."""
    if os.path.exists(path):
        return path
    if IN_CI:
        pytest.fail(f"{path} is not installed (apt-get install prometheus)")
    pytest.skip(f"{path} is not installed (apt-get install prometheus)")


BOARD = (chart("good", inputs="data/good.txt")
         + chart("bad", plot="plots:boom")
         + chart("fresh", inputs="data/fresh.txt", extra='stale_after = "2s"'))


def metrics_board(root, *charts: str):
    """A board of BOARD's charts (and `charts`), its inputs written."""
    board = fast_board(root, BOARD, *charts)
    (root / "data").mkdir()
    write_data(root / "data/good.txt", [1, 2, 3])
    write_data(root / "data/fresh.txt", [3, 2, 1])
    return board


def test_run_serves_metrics_that_follow_renders_staleness_and_removal(tmp_path, daemons):
    board = metrics_board(tmp_path / "board")
    port = free_port()
    d = daemons(board, "--serve", f"127.0.0.1:{port}")
    d.wait_state("good", state="ok")
    d.wait_state("bad", state="error")
    content_type, text = scrape_text(port)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type

    values = wait_for(lambda: (v := scrape(port)) and renders(v, "failed") >= 1 and renders(v, "ok") >= 2 and v,
                      60, "the first renders to be counted")
    assert values[("plotboard_build_info", (("version", __version__),))] == 1
    assert values[("plotboard_publish_pending_files", ())] == 0
    assert values[("plotboard_render_duration_seconds_count", ())] == renders(values, "ok") + renders(values, "failed")
    assert set(last_success(values)) == {"good", "fresh"}
    assert abs(last_success(values)["good"] - parse_iso(d.state("good")["rendered_at"])) < 0.002
    assert not any(name.endswith("_created") for name, _ in values)

    # Another successful render is counted at once; the chart's last success moves on.
    ok_before, seen = renders(values, "ok"), last_success(values)["good"]
    write_data(board.root / "data/good.txt", [4, 5, 6])
    values = wait_for(lambda: (v := scrape(port)) and renders(v, "ok") > ok_before and v, 60,
                      "the new render to be counted")
    assert last_success(values)["good"] > seen

    # Nothing renders `fresh` again: it turns stale by time alone, as judged at the scrape.
    values = wait_for(lambda: (v := scrape(port)) and by_state(v)["stale"] == 1 and v, 60, "fresh to turn stale")
    assert by_state(values) == {"ok": 1, "stale": 1, "error": 1, "pending": 0}

    # A removed chart's series go with it.
    good_renders = d.state("good")["renders"]  # its first render and the one above, in its record
    board.write(board.file.read_text().replace('name = "good"', 'name = "other"'))
    d.send(signal.SIGHUP)
    values = wait_for(lambda: (v := scrape(port)) and "good" not in last_success(v) and "other" in last_success(v)
                      and v, 60, "good's series to go, other's to come")
    assert sum(by_state(values).values()) == 3
    total = renders(values, "ok")
    assert d.stop() == 0

    # The counters start again from the records: a restart does not reset them.
    port = free_port()
    d = daemons(board, "--serve", str(port))
    values = wait_for(lambda: (v := scrape(port)) and v, 60, "the restarted daemon to answer")
    assert renders(values, "ok") >= total - good_renders > 0  # `good`'s renders left with its record
    assert d.stop() == 0


def test_promtool_finds_nothing_to_say_about_the_metrics(tmp_path, daemons):
    promtool = require(PROMTOOL)
    board = metrics_board(tmp_path / "board", chart("windowed", inputs="data/good.txt", extra='windows = ["1d", "7d"]'))
    port = free_port()
    d = daemons(board, "--serve", str(port))
    d.wait_state("windowed", state="ok")
    d.wait_state("bad", state="error")
    _, text = scrape_text(port)
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (result, text)
    assert "plotboard_render_duration_seconds_bucket" in text and 'le="30.0"' in text
    assert d.stop() == 0


@pytest.mark.parametrize("value", ["[::1", "::1:8000", ":8000", "[127.0.0.1]:80", "localhost:70000", "host:port"])
def test_a_bad_serve_address_is_one_line_and_exit_2_before_anything_starts(board, value):
    result = board.cli("run", "--serve", value)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "--serve" in result.stderr.splitlines()[-1], result.stderr
    assert not board.output.exists() and not (board.root / ".plotboard").exists()


def test_an_address_that_cannot_be_had_is_one_line(board):
    """As a port in use: the daemon has started by then, exit status 1."""
    result = board.cli("run", "--serve", "192.0.2.1:8000")  # TEST-NET-1: not this machine's
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("plotboard: cannot serve on 192.0.2.1:8000: ") and "Traceback" not in result.stderr


def test_serve_on_an_ipv6_host(board, daemons):
    with socket.socket(socket.AF_INET6) as s:  # the port is free on ::1 a moment ago
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    d = daemons(board, "--serve", f"[::1]:{port}")
    d.wait_log(f"http://[::1]:{port}/")  # the server starts after the line `run:` the fixture waits for
    d.wait_state("a", state="ok")
    content_type, text = scrape_text(port, host="::1")
    assert "plotboard_build_info" in text
    with urllib.request.urlopen(f"http://[::1]:{port}/a.png", timeout=30) as response:
        assert response.read() == (board.output / "a.png").read_bytes()
    assert d.stop() == 0


# -- build --metrics-file ---------------------------------------------------------------------------

def test_build_writes_the_metrics_file_atomically_world_readable(tmp_path):
    board = fast_board(tmp_path / "board", chart("good", inputs="data/good.txt"), chart("bad", plot="plots:boom"))
    (board.root / "data").mkdir()
    write_data(board.root / "data/good.txt", [1, 2, 3])
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "plotboard.prom"
    old = os.umask(0o077)  # node_exporter runs as another user: the file is 0644 whatever the umask
    try:
        result = board.cli("build", "--metrics-file", str(target))
    finally:
        os.umask(old)
    assert result.returncode == 1, result.stderr  # `bad` failed
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in folder.iterdir()) == ["plotboard.prom"]  # no temporary file left
    values = samples(target.read_text())
    assert (renders(values, "ok"), renders(values, "failed")) == (1, 1)
    assert values[("plotboard_render_duration_seconds_count", ())] == 2
    assert by_state(values) == {"ok": 1, "stale": 0, "error": 1, "pending": 0}
    assert set(last_success(values)) == {"good"}

    # A build with nothing to do still writes it (its mtime tells when the last build ran); the
    # counters come from the records, so they go on from the last build's.
    before = target.stat().st_mtime_ns
    wait_for(lambda: time.time_ns() > before + 10_000_000, 10, "the clock to move")
    result = board.cli("build", "--metrics-file", str(target))
    values = samples(target.read_text())
    assert target.stat().st_mtime_ns > before
    assert (renders(values, "ok"), renders(values, "failed")) == (1, 2)  # `bad` is retried, `good` is current
    assert values[("plotboard_render_duration_seconds_count", ())] == 1


@pytest.mark.parametrize("where", ["missing/x.prom", "folder", "public/x.prom", ".plotboard/x.prom", "slash/"])
def test_a_bad_metrics_file_is_one_line_and_exit_2_before_rendering(tmp_path, where):
    board = fast_board(tmp_path / "board", chart("good", inputs="data/good.txt"))
    (board.root / "data").mkdir()
    write_data(board.root / "data/good.txt", [1, 2, 3])
    (board.root / "folder").mkdir()
    (board.root / "slash").mkdir()
    path = str(board.root / where) + ("/" if where.endswith("/") else "")
    result = board.cli("build", "--metrics-file", path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"plotboard: --metrics-file {path}: "), result.stderr
    assert not board.output.exists(), "nothing renders after a bad --metrics-file"



# -- behind nginx, and scraped by a real Prometheus ---------------------------------------------------

def test_nginx_proxies_metrics_to_the_daemon(tmp_path, daemons):
    from browser import NGINX, Nginx, require_tool

    require_tool(NGINX)
    board = metrics_board(tmp_path / "board")
    port = free_port()
    d = daemons(board, "--serve", str(port))
    d.wait_state("good", state="ok")
    with Nginx(board.output, tmp_path / "nginx", daemon=port) as server:
        for path in ("metrics", "board/metrics"):
            with urllib.request.urlopen(server.url + path, timeout=30) as response:
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers
                assert response.headers["Cache-Control"] == "no-store"
                values = samples(response.read().decode())
            assert renders(values, "ok") >= 2 and "good" in last_success(values), path
    assert d.stop() == 0


PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: plotboard
    static_configs:
      - targets: ["127.0.0.1:{target}"]
"""


def query(port: int, expr: str) -> list[dict]:
    """The result vector of an instant query to Prometheus' HTTP API ([] until it has one)."""
    import json

    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.loads(response.read())
    except OSError:
        return []
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_a_real_prometheus_scrapes_run(tmp_path, daemons):
    prometheus = require("/usr/bin/prometheus")
    board = metrics_board(tmp_path / "board")
    port = free_port()
    d = daemons(board, "--serve", str(port))
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(target=port))
    api = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{api}"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> list[dict]:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            return [r for r in query(api, "up") if r["value"][1] == "1"]

        found = wait_for(up, 60, "Prometheus to scrape the daemon")
        assert found[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        info = wait_for(lambda: query(api, "plotboard_build_info"), 60, "plotboard_build_info in Prometheus")
        assert info[0]["metric"]["version"] == __version__ and info[0]["value"][1] == "1"
        errors = wait_for(lambda: query(api, 'plotboard_charts{state="error"}'), 60, "plotboard_charts")
        assert errors[0]["value"][1] == "1"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert d.stop() == 0


def test_the_readme_s_scrape_config_and_alert_rules_are_valid(tmp_path):
    """promtool checks the Prometheus config and the two alert rules the README shows."""
    import re

    from conftest import REPO

    promtool = require(PROMTOOL)
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Metrics$(.*?)(?=^## )", text, re.M | re.S).group(1)
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2 and "scrape_configs" in blocks[0] and "rules" in blocks[1], blocks
    assert "plotboard_chart_last_success_timestamp_seconds" in blocks[1] and "for: 10m" in blocks[1]
    (tmp_path / "prometheus.yml").write_text(blocks[0])
    (tmp_path / "rules.yml").write_text(blocks[1])
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"]):
        result = subprocess.run([promtool, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "SUCCESS: 2 rules found" in result.stdout + result.stderr


GATED = '''
import os, time

def gated(fig, inputs, release, **params):
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    fig.add_subplot().plot([1, 2, 3])
'''


def test_renders_queued_counts_the_renders_wanted_until_they_are_done(tmp_path, daemons):
    release = tmp_path / "release"
    charts = [chart(f"g{i}", plot="plots:gated", extra=f'params = {{ release = "{release}" }}') for i in range(5)]
    board = fast_board(tmp_path / "board", *charts, plots=GATED)  # 2 workers: 2 render, 3 wait
    port = free_port()
    d = daemons(board, "--serve", str(port))
    values = wait_for(lambda: (v := scrape(port)) and v[("plotboard_renders_queued", ())] == 5 and v, 60,
                      "the 5 renders to be queued")
    assert by_state(values)["pending"] == 5
    release.touch()
    values = wait_for(lambda: (v := scrape(port)) and v[("plotboard_renders_queued", ())] == 0 and v, 60,
                      "the queue to empty")
    assert renders(values, "ok") == 5 and by_state(values)["ok"] == 5
    assert d.stop() == 0


def test_build_with_a_daemon_owning_the_board_writes_the_records_counts(tmp_path, daemons):
    """The daemon renders a build's work; the file holds the counts from the records it left."""
    board = metrics_board(tmp_path / "board")
    d = daemons(board)
    d.wait_state("good", state="ok")
    d.wait_state("bad", state="error")
    target = tmp_path / "plotboard.prom"
    result = board.cli("build", "--force", "--metrics-file", str(target))
    assert result.returncode == 1, result.stderr  # `bad` failed again
    assert "done by plotboard run" in result.stderr
    values = samples(target.read_text())
    state = {c["name"]: c for c in board.status()["charts"]}
    assert renders(values, "ok") == state["good"]["renders"] + state["fresh"]["renders"] >= 4
    assert renders(values, "failed") == state["bad"]["failures"] >= 2
    assert values[("plotboard_render_duration_seconds_count", ())] == 0  # the daemon timed them
    assert d.stop() == 0
