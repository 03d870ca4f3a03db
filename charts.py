"""Plot functions of the repository's demo board (plotboard.toml)."""

import matplotlib
import numpy as np


def _read(path, dtype=float):
    return np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")


def load_lines(fig, inputs, **params):
    data = _read(inputs[0])
    ax = fig.add_subplot()
    minutes = data["minute"]
    for host in data.dtype.names[1:]:
        ax.plot(minutes / 60, data[host], label=host, linewidth=1)
    ax.set_xlabel("hours ago")
    ax.set_ylabel("load")
    ax.invert_xaxis()
    ax.legend(loc="upper left", ncols=3, frameon=False)
    ax.grid(alpha=0.3)


def endpoint_bars(fig, inputs, **params):
    data = _read(inputs[0])
    ax = fig.add_subplot()
    order = np.argsort(data["requests"])
    ax.barh(data["endpoint"][order], data["requests"][order], color="tab:blue")
    ax.set_xlabel("requests / hour")
    ax.grid(axis="x", alpha=0.3)


def latency_histogram(fig, inputs, bins=50, **params):
    ms = _read(inputs[0])["ms"]
    ax = fig.add_subplot()
    ax.hist(ms, bins=bins, color="tab:purple", alpha=0.8)
    for q, style in ((50, "--"), (99, ":")):
        value = np.percentile(ms, q)
        ax.axvline(value, color=matplotlib.rcParams["text.color"], linestyle=style, label=f"p{q} {value:.0f} ms")
    ax.set_xlabel("ms")
    ax.set_ylabel("requests")
    ax.legend(frameon=False)


def error_heatmap(fig, inputs, **params):
    grid = np.zeros((7, 24))
    for path in inputs:
        data = _read(path)
        np.add.at(grid, (data["weekday"], data["hour"]), data["errors"])
    ax = fig.add_subplot()
    image = ax.imshow(grid, aspect="auto", cmap="magma")
    ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    ax.set_xlabel("hour of day")
    fig.colorbar(image, ax=ax, label="5xx responses")


def disk_usage(fig, inputs, window=86400.0, window_name="1d", **params):
    """A disk's use over the chart's time window (the family `disk-{match}` in plotboard.toml)."""
    from renderer.helpers import last

    data = _read(inputs[0])
    rows = last(list(zip(-data["hour"] * 3600.0, data["used"])), window)  # hours ago -> seconds, newest is 0
    ax = fig.add_subplot()
    ax.fill_between([-t / 3600 for t, _ in rows], [u for _, u in rows], alpha=0.4)
    ax.plot([-t / 3600 for t, _ in rows], [u for _, u in rows], linewidth=1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("hours ago")
    ax.set_ylabel("% used")
    ax.invert_xaxis()
    ax.set_title(f"last {window_name}", loc="right", fontsize=9)
    ax.grid(alpha=0.3)
