"""Plot functions of the demo board. Each draws the last `window` seconds up to the moment
of the render, so a chart keeps sliding (and shows the gap) even when its data stops."""

import csv
import time
from datetime import datetime

import matplotlib.dates as mdates


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


def _axes(fig, window, ylabel):
    fig.subplots_adjust(left=0.085, right=0.985, top=0.95, bottom=0.12)
    ax = fig.add_subplot()
    now = time.time()
    ax.set_xlim(datetime.fromtimestamp(now - window), datetime.fromtimestamp(now))
    ax.xaxis.set_major_locator(mdates.MinuteLocator(interval=max(1, window // 600)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax


# A legend with a background of its own: the lines pass behind it, never through its text.
_LEGEND = {"fontsize": "small", "frameon": True, "framealpha": 0.85, "edgecolor": "none"}


def _no_data(ax):
    ax.text(0.5, 0.5, "waiting for data", transform=ax.transAxes, ha="center", va="center", color="0.5")


def cpu(fig, inputs, window=600):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "CPU %")
    ax.set_ylim(0, 100)
    if not times:
        return _no_data(ax)
    for name, values in zip(names, columns):
        ax.plot(times, values, linewidth=1.1, label=f"{name} {values[-1]:.0f}%")
    ax.axhline(85, color="tab:red", linewidth=0.8, linestyle="--")
    ax.legend(loc="upper left", ncol=len(names), **_LEGEND)


def latency(fig, inputs, window=600, slo_ms=300):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "response time (ms)")
    if not times:
        return _no_data(ax)
    p50, p95, p99 = columns
    ax.fill_between(times, p50, p95, color="tab:blue", alpha=0.15, linewidth=0)
    ax.plot(times, p50, color="tab:blue", linewidth=1.2, label=f"p50 {p50[-1]:.0f} ms")
    ax.plot(times, p95, color="tab:orange", linewidth=1.0, label=f"p95 {p95[-1]:.0f} ms")
    ax.plot(times, p99, color="tab:red", linewidth=0.9, label=f"p99 {p99[-1]:.0f} ms")
    ax.axhline(slo_ms, color="0.3", linewidth=0.8, linestyle="--", label=f"SLO {slo_ms} ms")
    ax.set_ylim(0, max(slo_ms * 1.3, max(p99) * 1.1))
    ax.legend(loc="upper left", ncol=4, **_LEGEND)


def requests(fig, inputs, window=600):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "requests / s")
    if not times:
        return _no_data(ax)
    labels = [f"{name} {values[-1]:.0f}/s" for name, values in zip(names, columns)]
    ax.stackplot(times, columns, labels=labels, alpha=0.85, linewidth=0)
    ax.set_ylim(0, max(map(sum, zip(*columns))) * 1.25)
    ax.legend(loc="upper left", ncol=len(names), **_LEGEND)


def queue(fig, inputs, window=600, warn=200):
    names, times, columns = _read(inputs)
    ax = _axes(fig, window, "jobs waiting")
    if not times:
        return _no_data(ax)
    depth = columns[0]
    ax.fill_between(times, depth, step="post", color="tab:purple", alpha=0.3, linewidth=0)
    ax.step(times, depth, where="post", color="tab:purple", linewidth=1.1, label=f"depth {depth[-1]:.0f}")
    ax.axhline(warn, color="tab:red", linewidth=0.8, linestyle="--", label=f"alert at {warn}")
    ax.set_ylim(0, max(warn * 1.3, max(depth) * 1.15))
    ax.legend(loc="upper left", ncol=2, **_LEGEND)
