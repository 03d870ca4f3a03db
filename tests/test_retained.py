"""Retained plots (a plot function written as a generator): drawn once per worker process, then
updated; the same pixels as a fresh render of the same data; started afresh when the chart's
settings or modules change, when the generator raises or ends, when the worker is replaced, and
when the worker's kept figures go past their bounds. Real worker processes: the local pool's, and
the render process beside a Dask worker."""

from __future__ import annotations

import io
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer.executors.pool import RenderPool
from renderer.render.jobs import RenderFailure, RenderJob, RenderOutput
from renderer.render.retained import KEPT_FIGURES

PLOTS = '''
import os
import numpy as np
from helper import read

def _log(params, what):
    with open(params["log"], "a") as f:
        f.write(f"{what} {os.getpid()}\\n")

def mixed(fig, inputs, **params):
    """Lines, bars, an image and text: drawn once, then their data updated."""
    _log(params, "fresh")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    (line,) = ax1.plot([], [], marker="o")
    label = ax1.text(0.05, 0.9, "", transform=ax1.transAxes)
    bars = None
    im = None
    while True:
        v = read(inputs)
        line.set_data(np.arange(len(v)), v)
        ax1.relim(); ax1.autoscale_view()
        ax1.set_title(f"last {v[-1]:g}")
        label.set_text(f"n = {len(v)}")
        if bars is not None:
            bars.remove()
        bars = ax2.bar(np.arange(len(v)), v, color="tab:orange")
        ax2.relim(); ax2.autoscale_view()
        grid = np.outer(v, v[::-1])
        if im is None:
            im = ax3.imshow(grid, cmap="viridis")
        else:
            im.set_data(grid)
            im.set_extent((-0.5, grid.shape[1] - 0.5, grid.shape[0] - 0.5, -0.5))
            im.set_clim(grid.min(), grid.max())
        inputs, params = yield
        _log(params, "update")

def once(fig, inputs, **params):
    """A generator that ends after one update: the render after is drawn afresh."""
    _log(params, "fresh")
    ax = fig.add_subplot()
    (line,) = ax.plot(read(inputs))
    inputs, params = yield
    _log(params, "update")

def fragile(fig, inputs, **params):
    """Raises in an update when the data holds a negative number."""
    _log(params, "fresh")
    ax = fig.add_subplot()
    (line,) = ax.plot(read(inputs))
    while True:
        inputs, params = yield
        _log(params, "update")
        v = read(inputs)
        if v.min() < 0:
            raise ValueError("negative")
        line.set_data(np.arange(len(v)), v)
        ax.relim(); ax.autoscale_view()

def blank(fig, inputs, **params):
    """A retained plot that forgets to draw."""
    _log(params, "fresh")
    while True:
        inputs, params = yield

def later_pyplot(fig, inputs, **params):
    """Draws on its figure first, then on pyplot's in its updates."""
    _log(params, "fresh")
    fig.add_subplot().plot(read(inputs))
    while True:
        inputs, params = yield
        _log(params, "update")
        import matplotlib.pyplot as plt
        plt.plot(read(inputs))

def heavy(fig, inputs, **params):
    """Keeps a big array (params["mib"] MiB) with its figure."""
    _log(params, "fresh")
    ballast = np.ones(params["mib"] * 2**20 // 8)
    ax = fig.add_subplot()
    (line,) = ax.plot(read(inputs))
    while True:
        inputs, params = yield
        _log(params, "update")
        v = read(inputs) + ballast[0] - 1
        line.set_data(np.arange(len(v)), v)
'''

HELPER = '''
import numpy as np

def read(inputs):
    return np.array([float(x) for x in open(inputs[0]).read().split()])
'''


class Chart:
    """A folder with plots.py, helper.py, data files and the log the plots write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "plots.py").write_text(PLOTS)
        (root / "helper.py").write_text(HELPER)
        self.log = root / "log.txt"
        self.log.touch()

    def data(self, name: str, values: list[float]) -> str:
        path = self.root / name
        path.write_text(" ".join(map(str, values)) + "\n")
        return str(path)

    def job(self, name: str, plot: str, data: str, **changes) -> RenderJob:
        params = {"log": str(self.log), **changes.pop("params", {})}
        job = RenderJob(name=name, plot=f"plots:{plot}", plot_file=str(self.root / "plots.py"), root=str(self.root),
                        inputs=(data,), size=(6.0, 2.0), dpi=50, hidpi=True, formats=("png",), png_compression=1,
                        theme="light", params=params)
        return replace(job, **changes)

    def events(self) -> list[str]:
        """What the plots logged since the last call: 'fresh' or 'update' per render, in order."""
        lines = self.log.read_text().split()
        self.log.write_text("")
        return lines[0::2]


def render(pool: RenderPool, job: RenderJob) -> RenderOutput | RenderFailure:
    return pool.submit(job).result(timeout=120)


def pixels(outcome: RenderOutput) -> np.ndarray:
    assert isinstance(outcome, RenderOutput), outcome
    return np.asarray(Image.open(io.BytesIO(outcome.files[f"{outcome.name}.png"])).convert("RGBA"))


SMALL = [1, 3, 2, 5, 4]
LARGE = [1200.5, 80000, 15, 99999, 4242, 7]  # other ticks, wider labels: the layout must move


@pytest.mark.parametrize("layout", ["constrained", "tight", "none"])
def test_a_retained_update_has_the_pixels_of_a_fresh_render_of_the_same_data(tmp_path, layout):
    c = Chart(tmp_path / "c")
    small, large = c.data("small.txt", SMALL), c.data("large.txt", LARGE)
    with RenderPool(workers=1, timeout=60) as pool:
        first = render(pool, c.job("m", "mixed", small, layout=layout))
        updated = render(pool, c.job("m", "mixed", large, layout=layout))
        back = render(pool, c.job("m", "mixed", small, layout=layout))
        assert c.events() == ["fresh", "update", "update"]
        fresh_large = render(pool, c.job("f", "mixed", large, layout=layout))  # another chart: a new figure
        assert c.events() == ["fresh"]
    assert not np.array_equal(pixels(first), pixels(updated))
    assert np.array_equal(pixels(updated), pixels(fresh_large))
    assert np.array_equal(pixels(back), pixels(first))
    assert updated.files["m.png"] == fresh_large.files["f.png"]
    assert updated.files["m@2x.png"] == fresh_large.files["f@2x.png"]


def test_a_retained_plot_starts_afresh_when_its_settings_or_modules_change(tmp_path):
    c = Chart(tmp_path / "c")
    small, large = c.data("small.txt", SMALL), c.data("large.txt", LARGE)
    with RenderPool(workers=1, timeout=60) as pool:
        render(pool, c.job("m", "mixed", small))
        render(pool, c.job("m", "mixed", large))
        assert c.events() == ["fresh", "update"]
        for changes in ({"size": (5.0, 2.0)}, {"dpi": 40}, {"theme": "dark"}, {"layout": "none"},
                        {"params": {"color": "red"}}, {"window": 3600.0, "window_name": "1h"}):
            render(pool, c.job("m", "mixed", small, **changes))
            render(pool, c.job("m", "mixed", large, **changes))
            assert c.events() == ["fresh", "update"], changes
        # A helper module's edit (and the plot module's) makes the worker run the new code afresh.
        (c.root / "helper.py").write_text(HELPER.replace("return np.array", "return 2 * np.array"))
        doubled = render(pool, c.job("m", "mixed", small))
        assert c.events() == ["fresh"]
        render(pool, c.job("m", "mixed", small))
        assert c.events() == ["update"]
        (c.root / "plots.py").write_text(PLOTS + "\n# edited\n")
        again = render(pool, c.job("m", "mixed", small))
        assert c.events() == ["fresh"]
        assert np.array_equal(pixels(doubled), pixels(again))
        # The render reports the helper it used, though only the first render imported it.
        assert str(c.root / "helper.py") in again.modules and str(c.root / "plots.py") in again.modules
        updated = render(pool, c.job("m", "mixed", small))
        assert c.events() == ["update"]
        assert str(c.root / "helper.py") in updated.modules


def test_a_retained_plot_that_ends_is_redrawn_afresh_and_one_that_raises_fails_once(tmp_path):
    c = Chart(tmp_path / "c")
    small, large = c.data("small.txt", SMALL), c.data("large.txt", LARGE)
    negative = c.data("negative.txt", [1, -2, 3])
    with RenderPool(workers=1, timeout=60) as pool:
        render(pool, c.job("o", "once", small))
        ended = render(pool, c.job("o", "once", large))  # the generator ends: drawn afresh, not failed
        assert isinstance(ended, RenderOutput) and c.events() == ["fresh", "update", "fresh"]
        assert np.array_equal(pixels(ended), pixels(render(pool, c.job("o2", "once", large))))
        c.events()

        render(pool, c.job("x", "fragile", small))
        failed = render(pool, c.job("x", "fragile", negative))
        assert isinstance(failed, RenderFailure) and failed.error == "ValueError: negative"
        assert c.events() == ["fresh", "update"]
        recovered = render(pool, c.job("x", "fragile", large))  # the failed figure is gone: a fresh one
        assert isinstance(recovered, RenderOutput) and c.events() == ["fresh"]
        fresh = render(pool, c.job("y", "fragile", large))
        assert np.array_equal(pixels(recovered), pixels(fresh))


def test_the_plot_contract_holds_for_retained_plots(tmp_path):
    c = Chart(tmp_path / "c")
    small = c.data("small.txt", SMALL)
    with RenderPool(workers=1, timeout=60) as pool:
        blank = render(pool, c.job("b", "blank", small))
        assert isinstance(blank, RenderFailure) and "drew nothing on the figure it was given" in blank.error
        assert isinstance(render(pool, c.job("p", "later_pyplot", small)), RenderOutput)
        failed = render(pool, c.job("p", "later_pyplot", small))
        assert isinstance(failed, RenderFailure) and "drew on pyplot's figure 1" in failed.error
        assert isinstance(render(pool, c.job("p", "later_pyplot", small)), RenderOutput)
        assert c.events() == ["fresh", "fresh", "update", "fresh"]


def test_a_replaced_worker_starts_afresh(tmp_path):
    c = Chart(tmp_path / "c")
    small = c.data("small.txt", SMALL)
    with RenderPool(workers=1, timeout=60, max_tasks=2) as pool:
        outcomes = [render(pool, c.job("m", "mixed", small)) for _ in range(3)]
    assert c.events() == ["fresh", "update", "fresh"]
    assert np.array_equal(pixels(outcomes[1]), pixels(outcomes[2]))


def test_kept_figures_are_bounded_least_recently_used_out(tmp_path):
    c = Chart(tmp_path / "c")
    small, large = c.data("small.txt", SMALL), c.data("large.txt", LARGE)
    names = [f"c{i}" for i in range(KEPT_FIGURES + 1)]
    with RenderPool(workers=1, timeout=60) as pool:
        for name in names:
            render(pool, c.job(name, "mixed", small))
        assert c.events() == ["fresh"] * len(names)
        # c0 was dropped for the newest; c1 is still kept.
        dropped = render(pool, c.job("c0", "mixed", large))
        kept = render(pool, c.job(names[-1], "mixed", large))
        assert c.events() == ["fresh", "update"]
        assert np.array_equal(pixels(dropped), pixels(kept))
        # By bytes: with max_memory = 256 MiB the kept figures may hold 64 MiB; three charts that
        # keep 24 MiB each do not fit, so the oldest goes.
        limited = {"max_memory": 256 * 2**20, "params": {"mib": 24}}
        for name in ("h1", "h2", "h3", "h2", "h1"):
            assert isinstance(render(pool, c.job(name, "heavy", small, **limited)), RenderOutput)
        assert c.events() == ["fresh", "fresh", "fresh", "update", "fresh"]


def test_the_render_process_beside_a_dask_worker_keeps_retained_figures(tmp_path):
    from renderer.executors.dask_remote import _close_idle, pack, run_remote

    c = Chart(tmp_path / "c")
    small, large = c.data("small.txt", SMALL), c.data("large.txt", LARGE)

    def remote(job: RenderJob) -> RenderOutput | RenderFailure:
        return pickle.loads(run_remote(pickle.dumps(pack(job)), job.name, 60.0))

    try:
        remote(c.job("m", "mixed", small))
        updated = remote(c.job("m", "mixed", large))
        assert c.events() == ["fresh", "update"]
        # The module is shipped with each render: an edit reaches the render process, afresh.
        (c.root / "plots.py").write_text(PLOTS + "\n# edited\n")
        fresh = remote(c.job("m", "mixed", large))
        assert c.events() == ["fresh"]
    finally:
        _close_idle()
    assert np.array_equal(pixels(updated), pixels(fresh))


DEMO_CHARTS = [("cpu", {"window": 600}, None), ("latency", {"window": 600, "slo_ms": 300}, None),
               ("requests", {"window": 600}, None), ("queue", {"window": 600, "warn": 200}, None),
               ("disk", {"warn": 90}, ("1h", 3600.0)), ("disk", {"warn": 90}, ("7d", 7 * 86400.0))]


def test_the_demo_boards_charts_are_retained_and_update_to_the_pixels_of_a_fresh_render(tmp_path, monkeypatch):
    """In this process, with the clock held (the demo's plots draw up to the moment of the render)."""
    import time

    from renderer.demo import DEMO_DIR, load_feeder
    from renderer.render import retained
    from renderer.render.draw import render as draw_render

    feeder = load_feeder().Feeder(tmp_path / "data", seed=3)
    start = 1_800_000_000
    feeder.backfill(start)
    feeder.write()
    files = {"disk": str(tmp_path / "data" / "disk-web-1.csv")}

    def job(name: str, plot: str, params: dict, window) -> RenderJob:
        data = files.get(plot, str(tmp_path / "data" / f"{plot}.csv"))
        return RenderJob(name=name, plot=f"charts:{plot}", plot_file=str(DEMO_DIR / "charts.py"), root=str(DEMO_DIR),
                         inputs=(data,), size=(5.6, 2.6), dpi=60, hidpi=False, formats=("png",), png_compression=1,
                         theme="light", params=params, window=window and window[1], window_name=window and window[0])

    monkeypatch.setattr(time, "time", lambda: float(start))
    first = {f"demo{i}": draw_render(job(f"demo{i}", *chart)) for i, chart in enumerate(DEMO_CHARTS)}
    for t in range(start + 1, start + 181):  # three minutes on: new rows, three more disk readings
        feeder.step(float(t))
    feeder.write()
    monkeypatch.setattr(time, "time", lambda: float(start + 180))
    for i, chart in enumerate(DEMO_CHARTS):
        updated = draw_render(job(f"demo{i}", *chart))
        assert retained._kept[retained.slot(job(f"demo{i}", *chart))].renders == 2, chart  # updated, not drawn afresh
        fresh = draw_render(job(f"fresh{i}", *chart))
        assert retained._kept[retained.slot(job(f"fresh{i}", *chart))].renders == 1
        assert not np.array_equal(pixels(updated), pixels(first[f"demo{i}"])), chart
        assert np.array_equal(pixels(updated), pixels(fresh)), chart


def test_under_run_a_retained_chart_is_updated_and_drawn_afresh_after_a_helper_edit(tmp_path, daemons):
    import os

    from conftest import chart, fast_board

    c = Chart(tmp_path / "b")
    board = fast_board(c.root, chart("m", "plots:mixed", "data/m.txt", f'params = {{ log = "{c.log}" }}'),
                       plots=PLOTS)
    board.file.write_text(board.file.read_text().replace("workers = 2", "workers = 1"))  # one worker keeps it
    (c.root / "data").mkdir()
    c.data("data/m.txt", SMALL)
    daemon = daemons(board)
    first = daemon.new_image("m", None)
    for values in (LARGE, SMALL[::-1]):
        c.data("data/.m.tmp", values)
        os.replace(c.root / "data/.m.tmp", c.root / "data/m.txt")
        first = daemon.new_image("m", first)
    events = c.events()  # (a render more than the changes asked for would be one more update)
    assert events[0] == "fresh" and events.count("fresh") == 1 and events.count("update") >= 2, events
    (c.root / "helper.py").write_text(HELPER.replace("return np.array", "return 2 * np.array"))
    daemon.new_image("m", first, what="m.png redrawn with the edited helper")
    assert "fresh" in c.events()
    assert daemon.stop() == 0


ZOOM_PLOTS = PLOTS + '''
def zoomed(fig, inputs, **params):
    """A zoomable retained plot; logs "fresh:WINDOW_NAME" or "update:WINDOW_NAME"."""
    _log(params, "fresh:" + params["window_name"])
    ax = fig.add_subplot()
    (line,) = ax.plot([], [], marker="o")
    while True:
        v = read(inputs)
        line.set_data(np.arange(len(v)), v)
        ax.relim(); ax.autoscale_view()
        ax.set_title(f"{params['window']:g} s to {params['end']:.0f}")
        inputs, params = yield
        _log(params, "update:" + params["window_name"])
'''


def test_an_on_demand_render_leaves_the_scheduled_renders_kept_figure_alone(tmp_path, daemons):
    """A zoom request draws in its own slot ("custom") on the worker that keeps the scheduled
    render's figure: the next scheduled render is still an update, and a pan (another `end`)
    updates the on-demand figure to the pixels of a fresh render."""
    import os

    from conftest import chart, fast_board, free_port
    from test_zoom_serve import get as zoom_get

    from renderer.board.config import load_board
    from renderer.store.workspace import make_job

    c = Chart(tmp_path / "b")
    board = fast_board(c.root, chart("m", "plots:zoomed", "data/m.txt",
                                     f'windows = ["1h"]\nzoom = true\nparams = {{ log = "{c.log}" }}'),
                       plots=ZOOM_PLOTS)
    board.file.write_text(board.file.read_text().replace("workers = 2", "workers = 1"))  # one worker keeps both
    (c.root / "data").mkdir()

    def write(values: list[float]) -> None:
        c.data("data/.m.tmp", values)
        os.replace(c.root / "data/.m.tmp", c.root / "data/m.txt")

    def get(path: str) -> bytes:
        status, headers, body = zoom_get(port, path)
        assert status == 200 and headers.get("content-type") == "image/png", (path, status, body[:200])
        return body

    write(SMALL)
    port = free_port()
    daemon = daemons(board, "--serve", str(port))
    image = daemon.new_image("m", None)
    write(LARGE)
    image = daemon.new_image("m", image)
    events = c.events()
    assert events[0] == "fresh:1h" and "update:1h" in events and events.count("fresh:1h") == 1, events

    end = 1_700_000_004.0  # a whole number of pixels' worth of time (3600 s / 300 px): not rounded
    get(f"/render/m.png?window=1h&end={end:.0f}&width=300")
    panned = get(f"/render/m.png?window=1h&end={end - 3600:.0f}&width=300")  # "earlier": same window, width
    assert c.events() == ["fresh:custom", "update:custom"]
    write(SMALL[::-1])
    daemon.new_image("m", image)
    events = c.events()
    assert events and set(events) == {"update:1h"}, f"the scheduled render started afresh: {events}"
    assert daemon.stop() == 0

    loaded = load_board(board.file)  # the pan, drawn afresh in a new worker from the same data
    c.data("data/then.txt", LARGE)
    m = loaded.chart("m")
    fresh = replace(make_job(loaded, m, [str(c.root / "data/then.txt")]), size=(300 / m.dpi, 150 / m.dpi),
                    hidpi=False, formats=("png",), aliases=(), window=3600.0, window_name="custom", end=end - 3600)
    with RenderPool(workers=1, timeout=60) as pool:
        reference = render(pool, fresh)
    assert c.events() == ["fresh:custom"]
    assert np.array_equal(pixels(reference), np.asarray(Image.open(io.BytesIO(panned)).convert("RGBA")))
