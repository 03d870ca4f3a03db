"""Every key of the board file, as one table per section: name, what it accepts, default, doc.

The loader reads a section through its table, the allowed keys and `[defaults]` come from it,
and tests/test_docs.py holds README.md's reference tables to it (type and default text).
What each kind of option accepts is renderer.board.kinds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from renderer.board.kinds import (
    EXECUTORS, THEMES, Choice, Cron, Duration, Flag, Folder, Foreach, Formats, Group, Inputs, Memory, Name, Option, Plot,
    Size, Table, Text, Whole, Windows,
)
from renderer.board.alert_options import Url
from renderer.board.publish_kinds import EndpointUrl, Region, S3Url
from renderer.board.zoom_options import CacheSize, Zoom
from renderer.render.limits import DEFAULT_MAX_MEMORY, LEAST_MAX_MEMORY, MIN_INTERVAL


def _title_default(table: dict) -> str:
    name = table.get("name")
    return name if isinstance(name, str) else ""


HISTORY_LIMIT = 10_000  # past images a chart may keep: each is a file in one folder, listed in one JSON file
LAYOUTS = ("constrained", "tight", "none")  # matplotlib's layout engines for the figure a plot draws on

WORKERS_PER_CPU = 4  # the most render processes a board may ask for, per CPU


class Workers(Whole):
    """The number of render processes: at least 1, at most WORKERS_PER_CPU × the CPU count
    (more processes than that only wait for a CPU, each holding its memory)."""

    type_text = f"integer 1 – {WORKERS_PER_CPU} × CPU count"

    def check(self, value: Any, root: Path) -> int:
        value = super().check(value, root)
        most = WORKERS_PER_CPU * (os.cpu_count() or 1)
        if value > most:
            raise ValueError(f"expected at most {most} ({WORKERS_PER_CPU} × this host's {os.cpu_count() or 1} "
                             f"CPUs: more render processes only wait for a CPU, each holding memory), got {value}")
        return value


BOARD_OPTIONS: tuple[Option, ...] = (
    Text("title", "the page's heading and <title>", "plotboard"),
    Folder("output", "the output folder", "public"),
    Duration("refresh", "how often an open page polls status.json", "10s", least=MIN_INTERVAL,
             most=(86400.0, "a day (24h)")),
    Workers("workers", "render processes", least=1,
            default_from=lambda table: os.cpu_count() or 1, default_text="CPU count"),
    Duration("render_timeout", "a render running longer is killed and counted as failed", "30s"),
    Choice("theme", "page colours and the matplotlib style", "light", choices=THEMES),
    Folder("state", "plotboard's bookkeeping (state.json, the board's lock): put it on a writable disk "
           "when the board file's folder is read-only; a board file not named plotboard.toml keeps its "
           "own in .plotboard/NAME, so two boards in one folder never share it", ".plotboard"),
    Folder("templates", "your own jinja2 templates, looked up before the built-in ones", must_exist=True),
    Whole("page_limit", "a grouped board of more charts than this is split: index.html lists the groups, "
          "each with its own page groups/ID.html", 500, least=1),
    Duration("check_every", "how often `run` checks every chart for changes no file event reported", "1m"),
    Choice("executor", "where renders run: local worker processes or a Dask cluster", "local", choices=EXECUTORS),
    Text("scheduler", "the Dask scheduler's address", what="an address like 'tcp://host:8786'"),
    Url("url", "where the board is served: makes the links in alerts absolute"),
    CacheSize("zoom_cache", "disk the cache of images drawn on demand (zoom) may use, least recently used out",
              "256MiB"),
)

CHART_OPTIONS: tuple[Option, ...] = (
    Name("name", "the chart's name; the image is OUTPUT/NAME.png", required="every chart needs a name",
         in_defaults=False),
    Text("title", "the card's heading", default_from=_title_default, default_text="the name"),
    Text("description", "a line under the title", ""),
    Group("group", "the section of the board the chart is shown in (sections in the order groups first appear)"),
    Plot("plot", "the plot function", required="expected 'module:function'"),
    Inputs("inputs", "files or glob patterns; a change re-renders the chart", []),
    Duration("every", "re-render at this interval", least=MIN_INTERVAL),
    Cron("cron", "re-render on this cron expression", what="a cron expression string", excludes=("every",)),
    Duration("stale_after", "the chart is stale when its last good render is older",
             default_text="3 × `every` (or 3 × the cron period), else never"),
    Table("params", "keyword arguments for the plot function", {}),
    Size("size", "inches", [8, 4]),
    Choice("layout", "how the axes are fitted into the image: constrained (matplotlib's constrained layout) "
           "keeps tick labels, offset text, titles and legends outside the axes inside it; none: matplotlib's "
           "fixed margins, for a plot that places its axes itself (subplots_adjust, add_axes)", "constrained",
           choices=LAYOUTS),
    Whole("dpi", "pixels per inch", 100, least=10, most=1000),
    Flag("hidpi", "also write NAME@2x.png at twice the pixels", True),
    Formats("formats", "the image formats; 'svg' may be added", ["png"]),
    Whole("png_compression", "zlib level of the PNG", 3, least=0, most=9, what="a whole number 0-9"),
    Memory("max_memory", "memory a render may use; more fails it with MemoryError", DEFAULT_MAX_MEMORY,
           least=LEAST_MAX_MEMORY),
    Foreach("foreach", "a family: one chart per file the glob matches; {match}, {stem} and {path} are "
            "replaced in name, title, description, inputs and string params", in_defaults=False,
            what="a glob pattern string"),
    Windows("windows", "time windows, each its own image NAME.WINDOW.png; the plot gets `window` "
            "(seconds) and `window_name`; later windows render at most once per window ÷ 288, or the "
            "table's interval"),
    Whole("history", "keep this many past images (history/NAME/), newest first; 0: none", 0, least=0,
          most=HISTORY_LIMIT, what="a whole number 0-10000"),
    Zoom("zoom", "the chart can be drawn on demand for any window ending at any time (GET /render/NAME.png); "
         "needs windows; the plot gets `end` (epoch seconds) besides `window`", False),
)

PUBLISH_OPTIONS: tuple[Option, ...] = (
    S3Url("url", "where the output folder is mirrored: a bucket and a key prefix",
          required="expected 's3://bucket/prefix/'", what="an 's3://bucket/prefix/' string"),
    EndpointUrl("endpoint_url", "the store's address when it is not AWS S3 (MinIO, Ceph, R2, …)",
                what="a URL string like 'http://127.0.0.1:9000'"),
    Region("region", "the store's region; default: the AWS chain's (AWS_REGION, shared config)",
           what="a region name string"),
)

BOARD = {o.name: o for o in BOARD_OPTIONS}
CHART = {o.name: o for o in CHART_OPTIONS}


def program_default(option: Option) -> Any:
    """An option's default as the program uses it (for dataclass fields)."""
    return option.check(option.default, Path())
