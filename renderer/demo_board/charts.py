"""Plot functions of the demo board. Each draws the last `window` seconds up to the moment
of the render, so a chart keeps sliding (and shows the gap) even when its data stops."""

import csv
import math
import time
from datetime import datetime

import matplotlib.dates as mdates
from matplotlib.ticker import MaxNLocator

from renderer.helpers import last, read_csv


def _read(inputs):
    """Header names (less the time column), times and one list of floats per column."""
    if not inputs:
        return [], [], []
    with open(inputs[0], newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        return rows[0][1:] if rows else [], [], []
    names, body = rows[0][1:], rows[1:]
    times = [datetime.fromtimestamp(float(r[0])) for r in body]
    columns = [[float(r[i + 1]) for r in body] for i in range(len(names))]
    return names, times, columns


def _axes(fig, window, ylabel, now=None):
    ax = fig.add_subplot()
    _slide(ax, window, now)
    _time_ticks(ax.xaxis, window)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax


def _time_ticks(axis, window):
    """About six to eight labelled ticks whatever the window: minutes, hours or days."""
    if window <= 2 * 3600:
        step = next(m for m in (1, 2, 5, 10, 15, 20, 30, 60) if window / 60 / m <= 8)
        axis.set_major_locator(mdates.MinuteLocator(byminute=range(0, 60, step)))
        axis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    elif window <= 2 * 86400:
        step = next(h for h in (1, 2, 3, 4, 6, 12) if window / 3600 / h <= 8)
        axis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, step)))
        axis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    else:
        axis.set_major_locator(mdates.DayLocator(interval=max(1, math.ceil(window / 86400 / 8))))
        axis.set_major_formatter(mdates.DateFormatter("%a"))
        axis.set_minor_locator(mdates.HourLocator(byhour=(12,)))


def _span(window):
    """A window drawn on demand (window_name "custom"), as people say it: 90m, 5h, 3.5d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if window >= 2 * size:
            return f"{window / size:.3g}{unit}"
    return f"{window:.0f}s"


# A legend with a background of its own: the lines pass behind it, never through its text.
_LEGEND = {"fontsize": "small", "frameon": True, "framealpha": 0.85, "edgecolor": "none",
           "columnspacing": 1.0, "handlelength": 1.5}


def _no_data(ax):
    ax.text(0.5, 0.5, "waiting for data", transform=ax.transAxes, ha="center", va="center", color="0.5")


def _slide(ax, window, now=None):
    """The x axis: the last `window` seconds up to `now` (the render's moment unless given)."""
    now = time.time() if now is None else now
    ax.set_xlim(datetime.fromtimestamp(now - window), datetime.fromtimestamp(now))


# Each chart is a retained plot (README, "Retained plots"): drawn once in a worker, then each
# render only sets its artists' data, the legend's numbers, the window and the limits. When the
# data changes shape (no data yet, another set of columns) the generator returns: plotboard
# then draws the chart afresh.


def _next(ax, window, names):
    """`yield from` this for the next render: its times and columns, the window slid up to its
    moment; None when the data changed shape (no rows, other columns): the plot then returns."""
    inputs, params = yield
    shape, (names, times, columns) = names, _read(inputs)
    if names != shape or not times:
        return None
    _slide(ax, window)
    return times, columns


def cpu(fig, inputs, window=600):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "CPU %")
    ax.set_ylim(0, 100)
    if not times:
        return _no_data(ax)
    lines = [ax.plot(times, values, linewidth=1.1, label=f"{name} {values[-1]:.0f}%")[0]
             for name, values in zip(names, columns)]
    ax.axhline(85, color="tab:red", linewidth=0.8, linestyle="--")
    legend = ax.legend(loc="upper left", ncol=len(names), **_LEGEND)
    while True:
        if (data := (yield from _next(ax, window, names))) is None:
            return
        times, columns = data
        for line, text, name, values in zip(lines, legend.get_texts(), names, columns):
            line.set_data(times, values)
            text.set_text(f"{name} {values[-1]:.0f}%")


def latency(fig, inputs, window=600, slo_ms=300):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "response time (ms)")
    if not times:
        return _no_data(ax)
    lines = [ax.plot([], [], color=color, linewidth=width, label=label)[0]
             for color, width, label in (("tab:blue", 1.2, "p50"), ("tab:orange", 1.0, "p95"), ("tab:red", 0.9, "p99"))]
    ax.axhline(slo_ms, color="0.3", linewidth=0.8, linestyle="--", label=f"SLO {slo_ms} ms")
    legend = ax.legend(loc="upper left", ncol=4, **_LEGEND)
    band = None
    while True:
        p50, p95, p99 = columns
        if band is not None:
            band.remove()
        band = ax.fill_between(times, p50, p95, color="tab:blue", alpha=0.15, linewidth=0)
        for line, text, values, label in zip(lines, legend.get_texts(), columns, ("p50", "p95", "p99")):
            line.set_data(times, values)
            text.set_text(f"{label} {values[-1]:.0f} ms")
        ax.set_ylim(0, max(slo_ms * 1.3, max(p99) * 1.1))
        if (data := (yield from _next(ax, window, names))) is None:
            return
        times, columns = data


def requests(fig, inputs, window=600):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "requests / s")
    if not times:
        return _no_data(ax)
    stack = ax.stackplot(times, columns, labels=names, alpha=0.85, linewidth=0)
    legend = ax.legend(loc="upper left", ncol=2, **_LEGEND)
    while True:
        for text, name, values in zip(legend.get_texts(), names, columns):
            text.set_text(f"{name} {values[-1]:.0f}/s")
        ax.set_ylim(0, max(map(sum, zip(*columns))) * 1.45)  # room for the legend's two rows
        if (data := (yield from _next(ax, window, names))) is None:
            return
        times, columns = data
        for layer in stack:
            layer.remove()
        ax.set_prop_cycle(None)  # the layers take the same colours again
        stack = ax.stackplot(times, columns, alpha=0.85, linewidth=0)


def queue(fig, inputs, window=600, warn=200):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "jobs waiting")
    if not times:
        return _no_data(ax)
    (line,) = ax.step([], [], where="post", color="tab:purple", linewidth=1.1, label="depth")
    ax.axhline(warn, color="tab:red", linewidth=0.8, linestyle="--", label=f"alert at {warn}")
    legend = ax.legend(loc="upper left", ncol=2, **_LEGEND)
    area = None
    while True:
        depth = columns[0]
        if area is not None:
            area.remove()
        area = ax.fill_between(times, depth, step="post", color="tab:purple", alpha=0.3, linewidth=0)
        line.set_data(times, depth)  # a step line "post" draws from its data as ax.step gave it
        legend.get_texts()[0].set_text(f"depth {depth[-1]:.0f}")
        ax.set_ylim(0, max(warn * 1.3, max(depth) * 1.15))
        if (data := (yield from _next(ax, window, names))) is None:
            return
        times, columns = data


def _disk_rows(inputs, window, now):
    """The rows of the `window` seconds up to `now` (none after it: a window in the past)."""
    return [r for r in last(read_csv(inputs[0]), window, time="time", now=now) if r["time"] <= now] if inputs else []


def disk(fig, inputs, window=3600.0, window_name="1h", warn=90, end=None):
    """One host's disk (the family disk-{match}): % used over the chart's time window (up to
    `end` when it is zoomable, `zoom = true`: the page may ask for any window at any time)."""
    now = time.time() if end is None else end
    rows = _disk_rows(inputs, window, now)
    ax = _axes(fig, window, "% used", now)
    if not rows:
        ax.set_ylim(0, 100)
        return _no_data(ax)
    ax.yaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 5, 10]))
    (line,) = ax.plot([], [], color="C0", linewidth=1.1, label="used")
    alert = legend = area = None
    while True:
        times = [datetime.fromtimestamp(r["time"]) for r in rows]
        used = [r["used"] for r in rows]
        # Scaled to the window's own range, so the last hour's slope shows as well as the week's.
        spread = max(used) - min(used)
        low = max(0, math.floor(min(used) - max(1.0, 0.1 * spread)))
        high = min(100, math.ceil(max(used) + max(1.0, 0.3 * spread)))  # room at the top for the legend
        if legend is None:
            if low < warn < high:
                alert = ax.axhline(warn, color="tab:red", linewidth=0.8, linestyle="--", label=f"alert at {warn}%")
            legend = ax.legend(loc="upper left", ncol=2, **_LEGEND)
        elif (alert is not None) != (low < warn < high):
            return  # the alert line enters or leaves the view: drawn afresh, with the legend it needs
        ax.set_ylim(low, high)
        if area is not None:
            area.remove()
        area = ax.fill_between(times, low, used, color="C0", alpha=0.25, linewidth=0)
        line.set_data(times, used)
        change = used[-1] - used[0]
        span = window_name if window_name != "custom" else _span(window)
        legend.get_texts()[0].set_text(f"{used[-1]:.1f}% used ({change:+.1f} in {span})")
        inputs, params = yield
        window, window_name = params.get("window", window), params.get("window_name", window_name)
        now = time.time() if params.get("end") is None else params["end"]
        rows = _disk_rows(inputs, window, now)
        if not rows:
            return
        _slide(ax, window, now)
