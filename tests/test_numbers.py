"""Non-finite numbers (TOML's inf and nan; 1e400 reads as inf) never get into a board, and
every JSON file plotboard writes is JSON a browser accepts (no NaN, no Infinity)."""

from __future__ import annotations

import json

import pytest

from conftest import TWO_CHARTS, Board
from test_config import bad, rejected, with_b  # noqa: F401 - `bad` is a fixture

NON_FINITE = [
    pytest.param(with_b("every = inf"), ["(b).every", "inf"], id="every-inf"),
    pytest.param(with_b("every = nan"), ["(b).every", "nan"], id="every-nan"),
    pytest.param(with_b("every = 1e400"), ["(b).every", "inf"], id="every-1e400"),
    pytest.param(with_b("stale_after = inf"), ["(b).stale_after", "inf"], id="stale_after-inf"),
    pytest.param(with_b("stale_after = -inf"), ["(b).stale_after", "-inf"], id="stale_after-minus-inf"),
    pytest.param(TWO_CHARTS.replace('render_timeout = "20s"', "render_timeout = nan"),
                 ["board.render_timeout", "nan"], id="render_timeout-nan"),
    pytest.param(TWO_CHARTS.replace("workers = 2", "workers = 2\nrefresh = inf"), ["board.refresh", "inf"],
                 id="refresh-inf"),
    pytest.param(TWO_CHARTS.replace("workers = 2", "workers = 2\nrefresh = nan"), ["board.refresh", "nan"],
                 id="refresh-nan"),
    pytest.param(TWO_CHARTS.replace("workers = 2", "workers = 2\nrefresh = 1e400"), ["board.refresh", "inf"],
                 id="refresh-1e400"),
    pytest.param(with_b("size = [inf, 1]"), ["(b).size[0]", "inf"], id="size-inf"),
    pytest.param(with_b("dpi = nan"), ["(b).dpi", "nan"], id="dpi-nan"),
    pytest.param(with_b("params = { limit = nan }"), ["(b).params.limit", "nan"], id="params-nan"),
    pytest.param(with_b("params = { bands = [1, { top = 1e400 }] }"), ["(b).params.bands[1].top", "inf"],
                 id="params-nested-1e400"),
    pytest.param(TWO_CHARTS.replace("dpi = 50", "dpi = 50\nparams = { x = inf }"), ["defaults.params.x", "inf"],
                 id="defaults-params-inf"),
]


@pytest.mark.parametrize("toml, parts", NON_FINITE)
def test_non_finite_numbers_are_rejected_naming_the_key(bad, toml, parts):  # noqa: F811
    line = rejected(bad, toml, *parts)
    assert "finite" in line


@pytest.mark.parametrize("toml, parts", [
    pytest.param(with_b('every = "99999999h"'), ["(b).every", "at most a year"], id="every-huge"),
    pytest.param(with_b('stale_after = "9000h"'), ["(b).stale_after", "at most a year"], id="stale_after-huge"),
    pytest.param(TWO_CHARTS.replace("workers = 2", 'workers = 2\nrefresh = "25h"'), ["board.refresh", "a day"],
                 id="refresh-over-a-day"),
    pytest.param(with_b('every = "' + "9" * 400 + 's"'), ["(b).every", "finite"], id="every-overflowing-digits"),
])
def test_durations_too_large_to_use_are_rejected(bad, toml, parts):  # noqa: F811
    rejected(bad, toml, *parts)


def strict_json(text: str) -> object:
    """JSON.parse as a browser does it: NaN and Infinity are syntax errors."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_status_json_stays_valid_json_when_bookkeeping_holds_non_finite_numbers(built: Board):
    state = built.root / ".plotboard" / "state.json"
    data = json.loads(state.read_text())
    data["charts"]["a"]["duration_ms"] = float("nan")
    data["charts"]["b"]["duration_ms"] = float("inf")
    state.write_text(json.dumps(data))  # Python writes NaN and Infinity
    result = built.cli("build")
    assert result.returncode == 0, result.stderr
    manifest = strict_json((built.output / "status.json").read_text())
    assert all(c["state"] == "ok" for c in manifest["charts"])
    strict_json(state.read_text())


def test_status_json_with_non_finite_numbers_is_unknown_to_plotboard_status(built: Board):
    status = built.output / "status.json"
    text = status.read_text()
    status.write_text(text.replace('"stale_after_s":null', '"stale_after_s":Infinity')
                      .replace('"stale_after_s": null', '"stale_after_s": Infinity'))
    assert "Infinity" in status.read_text()
    result = built.cli("status")
    assert result.returncode == 3, result.stdout
    assert result.stdout.startswith("PLOTBOARD UNKNOWN") and len(result.stdout.splitlines()) == 1
