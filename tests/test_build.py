"""`plotboard build`: out-of-date tracking, failures, the pages it writes, and its lock."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import struct
import subprocess
import sys

import psutil
import pytest

from conftest import PLOTS, PNG_SIGNATURE, REPO, TWO_CHARTS, Board, Snapshot, build_once, cli_env, start_cli, wait_for
from renderer.pages.status import parse_iso

FOUR = """
[board]
title = "Build board"
workers = 2
render_timeout = "20s"

[defaults]
size = [4, 2]
dpi = 50
hidpi = false

[[charts]]
name = "a"
title = "Chart A"
description = "reads a.txt"
plot = "plots:line"
inputs = ["data/a.txt"]

[[charts]]
name = "b"
title = "Chart B"
plot = "plots:line"
inputs = ["data/b.txt"]
params = { label = "bee" }

[[charts]]
name = "c"
title = "Chart C"
plot = "other:line"
inputs = ["data/a.txt"]

[[charts]]
name = "g"
title = "Chart G"
plot = "plots:line"
inputs = ["data/g/*.txt"]
"""

OTHER = PLOTS  # a second plot module, so editing plots.py leaves chart c alone

RECORDING = '''
import os
import time

def record(fig, inputs, **params):
    """Log when this render ran and in which build (PB_RUN), holding until the file PB_RELEASE
    exists and then for PB_HOLD seconds."""
    with open(params["log"], "a") as f:
        f.write(f"{os.environ.get('PB_RUN', '?')} start {time.time()!r}\\n")
    release = os.environ.get("PB_RELEASE")  # hold until the test creates this file (at most 120 s)
    deadline = time.monotonic() + 120
    while release and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(float(os.environ.get("PB_HOLD", "0")))
    fig.add_subplot().plot([1, 2, 3])
    with open(params["log"], "a") as f:
        f.write(f"{os.environ.get('PB_RUN', '?')} end {time.time()!r}\\n")
'''

LINE = re.compile(r" (rendered|failed) ([a-z0-9_-]+) trigger=")


def rendered(result: subprocess.CompletedProcess) -> list[str]:
    """Names of the charts a build rendered successfully, from its log lines, sorted."""
    return sorted(m.group(2) for m in LINE.finditer(result.stderr) if m.group(1) == "rendered")


def failed(result: subprocess.CompletedProcess) -> list[str]:
    return sorted(m.group(2) for m in LINE.finditer(result.stderr) if m.group(1) == "failed")


def bump(path) -> None:
    """Give a file a new mtime without sleeping (as `touch` a second later would)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.fixture(scope="module")
def four_built(tmp_path_factory) -> Snapshot:
    """Built once per module: charts a and c read data/a.txt (c through other.py), b reads
    data/b.txt, g a glob."""
    snapshot = build_once(tmp_path_factory.mktemp("four"), FOUR, {
        "other.py": OTHER, "data/a.txt": "1 2 3 2 1\n", "data/b.txt": "3 1 4 1 5\n", "data/g/1.txt": "2 7 1 8\n",
    })
    assert rendered(snapshot.result) == ["a", "b", "c", "g"]
    return snapshot


@pytest.fixture
def four(four_built: Snapshot) -> Board:
    """The four-chart board just as its first build left it, restored for each test."""
    return four_built.restore()


def renders(board: Board) -> dict[str, int]:
    return {c["name"]: c["renders"] for c in board.status()["charts"]}


def test_unchanged_second_build_renders_nothing(four):
    before = four.status()
    result = four.cli("build")
    assert result.returncode == 0, result.stderr
    assert rendered(result) == []
    assert "0 rendered" in result.stderr
    after = four.status()
    assert renders(four) == {"a": 1, "b": 1, "c": 1, "g": 1}
    assert [c["rendered_at"] for c in after["charts"]] == [c["rendered_at"] for c in before["charts"]]


def test_unchanged_build_never_imports_matplotlib(four, tmp_path):
    poisoned = tmp_path / "poisoned"
    (poisoned / "matplotlib").mkdir(parents=True)
    (poisoned / "matplotlib/__init__.py").write_text("raise ImportError('matplotlib was imported')\n")
    result = four.cli("build", PYTHONPATH=f"{poisoned}{os.pathsep}{REPO}")
    assert result.returncode == 0, result.stderr
    assert "0 rendered" in result.stderr


def test_touching_one_input_rerenders_exactly_its_charts(four):
    bump(four.root / "data/a.txt")
    result = four.cli("build")
    assert result.returncode == 0, result.stderr
    assert rendered(result) == ["a", "c"]
    assert renders(four) == {"a": 2, "b": 1, "c": 2, "g": 1}


def test_new_file_matching_a_glob_rerenders_its_chart(four):
    four.data("data/g/2.txt", "3 1 4\n")
    result = four.cli("build")
    assert rendered(result) == ["g"]


def test_editing_params_rerenders_that_chart(four):
    four.file.write_text(four.file.read_text().replace('label = "bee"', 'label = "wasp"'))
    result = four.cli("build")
    assert rendered(result) == ["b"]


def test_editing_plot_module_rerenders_its_charts(four):
    plots = four.root / "plots.py"
    plots.write_text(plots.read_text() + "\n# tuned\n")
    result = four.cli("build")
    assert rendered(result) == ["a", "b", "g"]


def test_editing_title_rerenders_nothing_but_updates_the_page(four):
    four.file.write_text(four.file.read_text().replace('title = "Chart B"', 'title = "Renamed B"'))
    result = four.cli("build")
    assert result.returncode == 0, result.stderr
    assert rendered(result) == []
    assert "Renamed B" in (four.output / "index.html").read_text()
    assert four.chart("b")["title"] == "Renamed B"


def test_force_renders_every_chart(four):
    result = four.cli("build", "--force")
    assert rendered(result) == ["a", "b", "c", "g"]
    assert renders(four) == {"a": 2, "b": 2, "c": 2, "g": 2}


def test_only_limits_the_build_to_the_named_charts(four):
    bump(four.root / "data/a.txt")
    bump(four.root / "data/b.txt")
    result = four.cli("build", "--only", "a", "b")
    assert rendered(result) == ["a", "b"]
    assert rendered(four.cli("build")) == ["c"]  # c was left out of date, not forgotten


def test_only_with_an_unknown_name_fails_naming_it(four):
    result = four.cli("build", "--only", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr and "Traceback" not in result.stderr


def test_raising_plot_fails_only_its_chart_and_keeps_its_image(built):
    board = built
    old_png = (board.output / "a.png").read_bytes()
    b_before = board.chart("b")
    board.data("data/a.txt", "1 2 oops\n")
    board.data("data/b.txt", "9 9 1\n")
    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    assert failed(result) == ["a"] and rendered(result) == ["b"]
    assert (board.output / "a.png").read_bytes() == old_png
    a = board.chart("a")
    assert a["state"] == "error"
    assert a["error"] == "ValueError: could not convert string to float: 'oops'"
    assert (a["renders"], a["failures"]) == (1, 1)
    b = board.chart("b")
    assert b["state"] == "ok" and b["renders"] == 2 and b["rendered_at"] > b_before["rendered_at"]
    assert a["error"] in html.unescape((board.output / "index.html").read_text())
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "failed a" in line and "ValueError" in line]


def test_failed_chart_is_retried_with_unchanged_inputs(board):
    flaky = PLOTS + '''
import os
def flaky(fig, inputs, **params):
    if os.path.exists(params["flag"]):
        raise RuntimeError("flag is set")
    fig.add_subplot().plot([1, 2])
'''
    flag = board.root / "flag"
    flag.write_text("")
    board.write(board.file.read_text().replace('plot = "plots:line"\ninputs = ["data/a.txt"]',
                                               f'plot = "plots:flaky"\nparams = {{ flag = "{flag}" }}'), flaky)
    assert board.cli("build").returncode == 1
    flag.unlink()
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert rendered(result) == ["a"]
    a = board.chart("a")
    assert (a["state"], a["error"], a["renders"], a["failures"]) == ("ok", None, 1, 1)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_images_have_exact_pixel_sizes_hidpi_and_svg(board):
    board.write(board.file.read_text().replace("hidpi = false", 'hidpi = true\nformats = ["png", "svg"]'))
    assert board.cli("build").returncode == 0
    assert png_size((board.output / "a.png").read_bytes()) == (200, 100)
    assert png_size((board.output / "a@2x.png").read_bytes()) == (400, 200)
    assert (board.output / "a.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    page = (board.output / "index.html").read_text()
    assert re.search(r'srcset="[^"]*a@2x\.png\?v=[0-9a-f]+ 2x', page) and "a.svg?v=" in page


def test_status_json_has_the_documented_shape(four):
    man = four.status()
    assert set(man) == {"board", "charts"}
    assert set(man["board"]) == {"title", "generated_at", "refresh_s"}
    assert man["board"]["title"] == "Build board" and man["board"]["refresh_s"] == 10
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
    assert iso.match(man["board"]["generated_at"])
    assert [entry["name"] for entry in man["charts"]] == ["a", "b", "c", "g"]
    for entry in man["charts"]:
        name = entry["name"]
        assert set(entry) == {"name", "title", "group", "image", "hash", "state", "rendered_at", "changed_at",
                              "duration_ms", "renders", "failures", "error", "stale_after_s", "waiting_for"}
        assert entry["waiting_for"] == [] and entry["group"] is None
        assert entry["image"] == f"{name}.png" and (four.output / entry["image"]).is_file()
        assert entry["state"] == "ok" and entry["error"] is None and entry["stale_after_s"] is None
        assert iso.match(entry["rendered_at"]) and iso.match(entry["changed_at"])
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] > 0
        assert re.fullmatch(r"[0-9a-f]+", entry["hash"])


def test_page_shows_every_chart_with_relative_links(four):
    page = (four.output / "index.html").read_text()
    assert "<title>Build board</title>" in page
    for name, title in [("a", "Chart A"), ("b", "Chart B"), ("c", "Chart C"), ("g", "Chart G")]:
        card = page[page.index(f'data-name="{name}"'):]
        card = card[:card.index("</article>")]
        assert f"<h2>{title}</h2>" in card
        img = re.search(r"<img [^>]*>", card).group(0)
        assert f'src="{name}.png?v={four.chart(name)["hash"]}"' in img
        assert 'width="200"' in img and 'height="100"' in img and f'alt="{title}"' in img
        assert re.search(r">\s*ok\s*<", card) and "rendered " in card  # state and age as visible text
    assert "reads a.txt" in page
    for link in re.findall(r'(?:href|src)="([^"]*)"', page):
        assert not link.startswith(("/", "http:", "https:", "//")), link
    assert (four.output / "static").is_dir() and any((four.output / "static").iterdir())


def test_board_templates_override_the_built_in_ones(built):
    board = built
    (board.root / "tpl").mkdir()
    (board.root / "tpl/index.html").write_text(
        "<p>custom {{ board.title }}</p>{% for c in charts %}<i>{{ c.name }}</i>{% endfor %}")
    board.write(board.file.read_text().replace("[board]\n", '[board]\ntemplates = "tpl"\n'))
    assert board.cli("build").returncode == 0
    assert (board.output / "index.html").read_text() == "<p>custom Test board</p><i>a</i><i>b</i>"


def recording_board(root, log) -> Board:
    b = Board(root).write(f"""
        [board]
        workers = 2
        [defaults]
        size = [2, 1]
        dpi = 40
        hidpi = false
        plot = "plots:record"
        params = {{ log = "{log}" }}
        [[charts]]
        name = "r1"
        [[charts]]
        name = "r2"
        """, RECORDING)
    return b


def runs(log) -> dict[str, tuple[float, float]]:
    """Each build's span: its first render's start to its last render's end."""
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        run, _, t = line.split()
        spans.setdefault(run, []).append(float(t))
    return {run: (min(ts), max(ts)) for run, ts in spans.items()}


def test_overlapping_builds_never_interleave(tmp_path):
    """Two builds started together (a race for the lock, where test_second_build_waits_for_the_first
    starts the second once the first renders): whichever takes the board holds its renders until
    the test releases them, and meanwhile the other must wait for it, not render."""
    log = tmp_path / "renders.log"
    release = tmp_path / "release"
    b = recording_board(tmp_path / "board", log)
    errs = {run: tmp_path / f"build{run}.err" for run in ("1", "2")}
    procs: dict[str, subprocess.Popen] = {}

    def rendering() -> set[str]:
        """The builds that have started a render."""
        return {line.split()[0] for line in log.read_text().splitlines()} if log.exists() else set()

    def waiting() -> set[str]:
        return {run for run, path in errs.items() if "waiting for" in path.read_text()}

    try:
        for run, path in errs.items():
            with open(path, "w") as err:
                procs[run] = subprocess.Popen([sys.executable, "-m", "renderer", "build", "--force", "-c", str(b.file)],
                                              env=cli_env(PB_RUN=run, PB_RELEASE=str(release)),
                                              stdout=subprocess.DEVNULL, stderr=err)
        wait_for(lambda: len(rendering()) == 2 or (rendering() and waiting())
                 or any(p.poll() is not None for p in procs.values()),
                 timeout=60, what="one build to render and the other to wait for it")
        assert len(rendering()) == 1, f"both builds rendered at once: {log.read_text()}"
        (holder,) = rendering()
        (waiter,) = {"1", "2"} - {holder}
        assert waiting() == {waiter}, f"build {waiter} did not wait: {errs[waiter].read_text()}"
    finally:
        release.write_text("")
        for p in procs.values():
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    for run, p in procs.items():
        assert p.returncode == 0, errs[run].read_text()
    assert f"pid {procs[holder].pid}" in errs[waiter].read_text()
    spans = runs(log)
    assert len(log.read_text().splitlines()) == 8  # 2 builds x 2 charts x start/end
    assert spans[holder][1] <= spans[waiter][0], f"builds overlapped: {spans}"
    assert [c["renders"] for c in b.status()["charts"]] == [2, 2]


def test_second_build_waits_for_the_first(tmp_path):
    log = tmp_path / "renders.log"
    release = tmp_path / "release"
    b = recording_board(tmp_path / "board", log)
    first = start_cli("build", "--force", "-c", str(b.file), PB_RUN="1", PB_RELEASE=str(release))
    second_err = tmp_path / "second.err"
    second = None
    try:
        wait_for(lambda: log.exists() and "1 start" in log.read_text(), timeout=60, what="the first build's render")
        with open(second_err, "w") as err:
            second = subprocess.Popen([sys.executable, "-m", "renderer", "build", "--force", "-c", str(b.file)],
                                      env=cli_env(PB_RUN="2"), stdout=subprocess.DEVNULL, stderr=err, text=True)
        # The first build holds its render (and the lock) until the second says it waits.
        wait_for(lambda: second.poll() is not None or "waiting for" in second_err.read_text(), timeout=60,
                 what="the second build to wait for the lock")
    finally:
        release.write_text("")
        _, err1 = first.communicate(timeout=120)
        if second is not None:
            second.wait(timeout=120)
    err2 = second_err.read_text()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for" in err2 and f"pid {first.pid}" in err2
    spans = runs(log)
    assert spans["1"][1] <= spans["2"][0], spans


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
    log = tmp_path / "renders.log"
    b = recording_board(tmp_path / "board", log)
    holder = subprocess.Popen(
        [sys.executable, "-m", "renderer", "build", "-c", str(b.file)],
        env=cli_env(PB_RUN="1", PB_HOLD="60"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: log.exists() and "1 start" in log.read_text(), timeout=60, what="the holder's render")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        wait_for(lambda: not _in_group(holder.pid), timeout=60, what="the holder's workers to die")
    result = b.cli("build", timeout=120, PB_RUN="2")
    assert result.returncode == 0, result.stderr
    assert rendered(result) == ["r1", "r2"]


def _in_group(pgid: int) -> list[int]:
    found = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def test_fingerprint_versions_are_the_installed_distributions_versions():
    """Read from .dist-info folder names, without importlib.metadata; they must agree with it."""
    from importlib.metadata import version

    from renderer.store.fingerprints import library_versions

    found = library_versions()
    for dist in ("matplotlib", "numpy", "pillow"):
        assert found[dist] == version(dist), dist


# -- a build with nothing to render leaves the pages alone only while they are current -------


def test_a_build_with_nothing_to_render_still_shows_a_chart_turned_stale(board):
    board.write(TWO_CHARTS.replace('name = "b"\n', 'name = "b"\nstale_after = "1h"\n'))
    assert board.cli("build").returncode == 0
    assert board.cli("build").returncode == 0  # nothing changed: the pages are current
    assert board.chart("b")["state"] == "ok"
    # b's last render two hours ago, as the bookkeeping has it: past its stale_after, whatever
    # the machine's speed
    state_file = board.root / ".plotboard" / "state.json"
    state = json.loads(state_file.read_text())
    assert abs(state["charts"]["b"]["rendered_at"] - parse_iso(board.chart("b")["rendered_at"])) < 0.002
    state["charts"]["b"]["rendered_at"] -= 7200
    state["charts"]["b"]["changed_at"] -= 7200
    state_file.write_text(json.dumps(state))
    result = board.cli("build")
    assert "build: 0 rendered, 0 failed, 2 up to date" in result.stderr, result.stderr
    assert board.chart("b")["state"] == "stale"
    assert 'id="chart-b" data-name="b" data-state="stale"' in (board.output / "index.html").read_text()


def test_pages_are_current_until_a_chart_turns_stale_judged_at_the_time_given(board):
    """What a build with nothing to render decides from (pages_current) and what it writes then
    (write_pages), each at a time passed in: the pages stop being current when a chart turns
    stale, are written showing it stale, and are current again after that."""
    from renderer.board.config import load_board
    from renderer.pages.write import pages_current, write_pages
    from renderer.store.records import load_state

    board.write(TWO_CHARTS.replace('name = "b"\n', 'name = "b"\nstale_after = "1h"\n'))
    assert board.cli("build").returncode == 0
    loaded = load_board(board.file)
    records = load_state(loaded)
    state = records.loaded
    assert state is not None
    turns = records["b"].rendered_at + 3600
    assert pages_current(loaded, state, turns - 1)
    assert not pages_current(loaded, state, turns)
    write_pages(loaded, records, turns + 1, state=state)
    assert (board.chart("a")["state"], board.chart("b")["state"]) == ("ok", "stale")
    assert 'id="chart-b" data-name="b" data-state="stale"' in (board.output / "index.html").read_text()
    assert pages_current(loaded, state, turns + 2)  # nothing else turns: no rewrite at every build after


def test_a_build_with_nothing_to_render_shows_a_new_title_and_a_new_template(built):
    before = built.cli("build")
    assert "build: 0 rendered" in before.stderr, before.stderr
    built.file.write_text(built.file.read_text().replace('title = "Chart A"', 'title = "Chart A, renamed"'))
    result = built.cli("build")
    assert "build: 0 rendered, 0 failed, 2 up to date" in result.stderr, result.stderr  # a title is not in the image
    assert built.chart("a")["title"] == "Chart A, renamed"
    assert "Chart A, renamed" in (built.output / "index.html").read_text()
    templates = built.root / "templates"
    templates.mkdir()
    (templates / "_card.html").write_text('<article id="chart-{{ c.name }}">own card {{ c.title }}</article>')
    built.file.write_text(built.file.read_text().replace('[board]\n', '[board]\ntemplates = "templates"\n', 1))
    assert built.cli("build").returncode == 0
    (templates / "_card.html").write_text('<article id="chart-{{ c.name }}">own card, edited {{ c.title }}</article>')
    assert built.cli("build").returncode == 0
    assert "own card, edited Chart B" in (built.output / "index.html").read_text()
