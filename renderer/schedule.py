"""When a chart's `every` interval or `cron` expression next comes due."""

from __future__ import annotations

from datetime import datetime, timezone

from renderer.config import Chart


def next_due(chart: Chart, last: float) -> float | None:
    """Epoch seconds of the first scheduled render after `last`, or None for on-change charts."""
    if chart.every is not None:
        return last + chart.every
    if chart.cron is not None:
        from cronsim import CronSim

        after = datetime.fromtimestamp(last, timezone.utc).astimezone()  # cron speaks local time
        return next(iter(CronSim(chart.cron, after))).timestamp()
    return None
