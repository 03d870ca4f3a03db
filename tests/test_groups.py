"""`group`: sections of the page in board-file order with their summaries, status.json's
"group", and the manifest split per group (status/index.json, status/ID.json) so that a
change in one group rewrites only that group's file. Real CLI, real files."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from conftest import Board, wait_for
from renderer.pages import groups

GROUPED = """
[board]
title = "Grouped"
workers = 2

[defaults]
size = [2, 1]
dpi = 40
hidpi = false
group = "Web & <api>"

[[charts]]
name = "w1"
plot = "plots:line"
inputs = ["data/w1.txt"]

[[charts]]
name = "d1"
plot = "plots:line"
inputs = ["data/d1.txt"]
group = "Disks"

[[charts]]
name = "w2"
plot = "plots:boom"
inputs = ["data/w2.txt"]

[[charts]]
name = "d2"
title = "Disk <two>"
plot = "plots:line"
inputs = ["data/d2.txt"]
group = "Disks"
"""


def grouped(tmp_path: Path) -> Board:
    b = Board(tmp_path / "board").write(GROUPED)
    for name in ("w1", "d1", "w2", "d2"):
        b.data(f"data/{name}.txt", "1 2 3\n")
    return b


def test_status_json_gives_each_charts_group_and_the_page_shows_sections_in_board_file_order(tmp_path):
    b = grouped(tmp_path)
    assert b.cli("build").returncode == 1  # w2 fails
    assert {c["name"]: c["group"] for c in b.status()["charts"]} == \
        {"w1": "Web & <api>", "d1": "Disks", "w2": "Web & <api>", "d2": "Disks"}
    html = (b.output / "index.html").read_text()
    sections = re.findall(r'<section class="group" id="group-([a-z0-9-]+)"', html)
    assert sections == ["web-api", "disks"]
    # Each section holds its own cards, in board-file order, and the index links to each.
    web, disks = html.split('<section class="group" id="group-')[1:]
    assert re.findall(r'data-name="(\w+)"', web) == ["w1", "w2"]
    assert re.findall(r'data-name="(\w+)"', disks) == ["d1", "d2"]
    assert '<a href="#group-web-api" data-group="web-api">Web &amp; &lt;api&gt; ' in html
    assert 'id="chart-d2"' in html
    # The summary counts trouble first and names the chart in error, linking to its card.
    summary = re.search(r'<p class="summary">(.*?)</p>', web).group(1)
    assert summary.index("1 error") < summary.index("1 ok")
    assert '<a href="#chart-w2" class="state-error">w2</a>' in summary


def test_a_board_without_groups_is_one_section_without_a_heading(board):
    board.cli("build")
    html = (board.output / "index.html").read_text()
    assert html.count('<section class="group"') == 1 and 'class="group-title"' not in html
    assert 'id="groups"' not in html  # no group index either
    assert all(c["group"] is None for c in board.status()["charts"])
    index = json.loads((board.output / "status/index.json").read_text())
    assert [g["id"] for g in index["groups"]] == ["ungrouped"]


def test_a_change_in_one_group_rewrites_only_that_groups_manifest(tmp_path):
    b = grouped(tmp_path)
    b.file.write_text(b.file.read_text().replace("plots:boom", "plots:line"))  # a failed chart re-renders
    b.cli("build")
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (b.output / "status").iterdir()}
    assert set(files) == {"index.json", "web-api.json", "disks.json"}
    index = json.loads(files["index.json"][0])
    for g in index["groups"]:
        part = json.loads(files[f"{g['id']}.json"][0])
        assert [c["name"] for c in part["charts"]] == \
            [c["name"] for c in b.status()["charts"] if c["group"] == g["name"]]
    b.data("data/d1.txt", "5 4 3 2 1\n")
    b.cli("build")
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (b.output / "status").iterdir()}
    assert after["web-api.json"] == files["web-api.json"], "a group with no change was rewritten"
    assert after["disks.json"][0] != files["disks.json"][0]
    new_index = json.loads(after["index.json"][0])
    assert new_index["groups"][0]["hash"] == index["groups"][0]["hash"]
    assert new_index["groups"][1]["hash"] != index["groups"][1]["hash"]
    assert new_index["board"]["layout"] == index["board"]["layout"]


def test_a_group_that_goes_takes_its_manifest_with_it_and_self_repair_restores_them(tmp_path):
    b = grouped(tmp_path)
    b.cli("build")
    b.file.write_text(b.file.read_text().replace('group = "Disks"', 'group = "Storage"'))
    b.cli("build")
    assert sorted(p.name for p in (b.output / "status").iterdir()) == ["index.json", "storage.json", "web-api.json"]
    (b.output / "status" / "storage.json").unlink()
    b.cli("build")
    assert (b.output / "status" / "storage.json").is_file(), "the next build restores a deleted group file"


def test_group_ids_are_unique_and_never_index():
    entries = [{"name": n, "group": g} for n, g in
               [("a", "Index"), ("b", "a b"), ("c", "A-B"), ("d", None), ("e", "ungrouped"), ("f", "!!")]]
    ids = [s["id"] for s in groups.sections(entries)]
    assert ids == [f"index-{digest('Index')}", "a-b", f"a-b-{digest('A-B')}", "ungrouped",
                   f"ungrouped-{digest('ungrouped')}", "group"]


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def test_group_ids_do_not_move_when_groups_are_added_or_removed():
    """An id depends on the group's name (and on an earlier group of the same slug), never on
    how many groups came before it: adding or removing other groups keeps every deep link."""
    def ids(*names):
        return {s["name"]: s["id"] for s in groups.sections([{"name": f"c{i}", "group": g} for i, g in enumerate(names)])}

    before = ids("Web & API", "web/api", "Disks", None)
    after = ids("Queues", "Web & API", "Index", "Web API!", "web/api", None, "Disks", "Ungrouped")
    assert before == {"Web & API": "web-api", "web/api": f"web-api-{digest('web/api')}", "Disks": "disks", None: "ungrouped"}
    assert {name: after[name] for name in before} == before
    assert ids("Web & API", "Disks")["Disks"] == ids("Disks")["Disks"] == "disks"


def test_a_split_boards_group_pages_keep_their_names_when_groups_come_and_go(tmp_path):
    """groups/ID.html and #group-ID of a group stay put when another group whose name gives the
    same id goes, or one that does not clash is added before it."""
    b = split_board(tmp_path)
    b.data("data/q1.txt", "1 2 3\n")
    extra = "".join(f'\n[[charts]]\nname = "{n}"\nplot = "plots:line"\ninputs = ["data/q1.txt"]\ngroup = "{g}"\n'
                    for n, g in (("w3", "Web/API"), ("w4", "Web API!")))
    b.file.write_text(GROUPED.replace("workers = 2", "workers = 2\npage_limit = 3") + extra)
    b.cli("build")
    later = f"web-api-{digest('Web API!')}"
    pages = {"disks.html", "web-api.html", f"web-api-{digest('Web/API')}.html", f"{later}.html"}
    assert {p.name for p in (b.output / "groups").iterdir()} == pages
    queues = '[[charts]]\nname = "q1"\nplot = "plots:line"\ninputs = ["data/q1.txt"]\ngroup = "Queues"\n\n[[charts]]'
    b.file.write_text(b.file.read_text().replace("[[charts]]", queues, 1).replace('name = "w3"', 'name = "w3"\ngroup = "Disks"', 1)
                      .replace('group = "Web/API"\n', ""))
    b.cli("build")
    assert {p.name for p in (b.output / "groups").iterdir()} == {"queues.html", "web-api.html", "disks.html", f"{later}.html"}
    html = (b.output / "index.html").read_text()
    assert re.findall(r'<section class="group" id="group-([a-z0-9-]+)"', html) == ["queues", "web-api", "disks", later]


def split_board(tmp_path: Path) -> Board:
    """GROUPED with page_limit = 3: its 4 charts make it a split board."""
    b = grouped(tmp_path)
    b.file.write_text(b.file.read_text().replace("workers = 2", "workers = 2\npage_limit = 3"))
    return b


def test_a_split_board_lists_its_groups_on_index_html_and_gives_each_group_its_page(tmp_path):
    b = split_board(tmp_path)
    assert b.cli("build").returncode == 1  # w2 fails
    html = (b.output / "index.html").read_text()
    assert 'data-name="' not in html and "<img" not in html, "a split index shows no cards"
    assert re.findall(r'<section class="group" id="group-([a-z0-9-]+)"', html) == ["web-api", "disks"]
    assert '<a href="groups/web-api.html" data-group="web-api">Web &amp; &lt;api&gt; ' in html
    assert '<a href="groups/web-api.html#chart-w2" class="state-error">w2</a>' in html  # trouble, linked
    assert '<p class="names" hidden>w1 w2</p>' in html  # what the filter matches chart names against
    assert sorted(p.name for p in (b.output / "groups").iterdir()) == ["disks.html", "web-api.html"]
    web = (b.output / "groups" / "web-api.html").read_text()
    assert re.findall(r'data-name="(\w+)"', web) == ["w1", "w2"] and 'id="chart-d1"' not in web
    assert 'src="../w1.png?v=' in web and 'href="../static/board.css?v=' in web and 'data-base="../"' in web
    assert '<a rel="next" href="disks.html">Disks ›</a>' in web and 'rel="prev"' not in web
    index = json.loads((b.output / "status/index.json").read_text())
    assert index["groups"][0]["trouble"] == [{"name": "w2", "title": "w2", "state": "error"}]
    assert "trouble" not in index["groups"][1]


def test_a_change_in_one_group_of_a_split_board_rewrites_only_that_groups_files(tmp_path):
    b = split_board(tmp_path)
    b.file.write_text(b.file.read_text().replace("plots:boom", "plots:line"))
    assert b.cli("build").returncode == 0
    stamp = lambda: {str(p.relative_to(b.output)): p.stat().st_mtime_ns  # noqa: E731
                     for p in b.output.rglob("*") if p.is_file() and p.suffix in (".html", ".json")}
    before = stamp()
    b.data("data/d1.txt", "5 4 3 2 1\n")
    assert b.cli("build").returncode == 0
    after = stamp()
    changed = sorted(name for name in after if after[name] != before.get(name))
    # index.html shows the groups' summaries, which did not change; status.json is the whole board.
    assert changed == ["groups/disks.html", "status.json", "status/disks.json", "status/index.json"], changed
    assert b.cli("build").returncode == 0
    assert stamp() == after, "a build with nothing to do wrote pages"


def test_a_board_that_stops_being_split_loses_its_group_pages(tmp_path):
    b = split_board(tmp_path)
    b.cli("build")
    assert (b.output / "groups" / "disks.html").is_file()
    (b.output / "groups" / "disks.html").unlink()
    b.cli("build")
    assert (b.output / "groups" / "disks.html").is_file(), "the next build restores a deleted group page"
    b.file.write_text(b.file.read_text().replace("page_limit = 3", "page_limit = 4"))
    b.cli("build")
    assert list((b.output / "groups").iterdir()) == []
    assert 'data-name="w1"' in (b.output / "index.html").read_text()


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_index_json_gets_a_new_size_within_its_mtime_second_whatever_this_hosts_clock(built, monkeypatch, skew):
    """nginx tells versions of status/index.json apart by mtime second and size: each write
    within one mtime second gets a size not used in it yet. The second is the file's mtime (on
    NFS, the server's clock), not this host's: a host clock an hour behind or ahead (made so
    here) still pads. Writes are repeated until two land in one mtime second."""
    import types

    import renderer.pages.write as write_module
    from renderer.board.config import load_board
    from renderer.pages.model import Pages
    from renderer.store.records import load_state

    real = time.time
    monkeypatch.setattr(write_module, "time", types.SimpleNamespace(time=lambda: real() + skew))
    board = load_board(built.file)
    records = load_state(board)
    index = board.output / "status" / "index.json"
    seen: list[tuple[int, int, bytes]] = []

    def two_in_one_second() -> bool:
        records["a"].rendered_at = 1_000_000.0 + len(seen)  # a new version of status/index.json
        write_module.write_pages(board, records, real(), Pages(), None)
        st = index.stat()
        seen.append((st.st_mtime_ns // 1_000_000_000, st.st_size, index.read_bytes().rstrip(b"\n")))
        return len(seen) > 1 and seen[-1][0] == seen[-2][0]

    wait_for(two_in_one_second, timeout=60, what="two writes within one mtime second")
    assert seen[-1][2] != seen[-2][2], "status/index.json was not written again"
    assert seen[-1][1] != seen[-2][1], seen


EMPTY_FAMILIES = """
[board]
title = "Empty families"
workers = 1

[defaults]
size = [2, 1]
dpi = 40
hidpi = false

[[charts]]
name = "w1"
plot = "plots:line"
inputs = ["data/w1.txt"]
group = "Web"

[[charts]]
name = "nic-{stem}"
foreach = "nothing/nic-*.txt"
plot = "plots:line"
inputs = ["{path}"]
group = "Web"

[[charts]]
name = "d1"
plot = "plots:line"
inputs = ["data/d1.txt"]
group = "Disks"

[[charts]]
name = "tape-{stem}"
foreach = "nothing/tape-*.txt"
plot = "plots:line"
inputs = ["{path}"]
group = "Tapes"

[[charts]]
name = "s1"
plot = "plots:line"
inputs = ["data/d1.txt"]
group = "Sensors"
"""


def test_a_family_that_matches_nothing_sits_in_its_own_groups_section(tmp_path):
    """Not at the end of the last section: in its group's, and a group that only an empty family
    has gets a section (with its heading) of its own."""
    b = Board(tmp_path / "board").write(EMPTY_FAMILIES)
    b.data("data/w1.txt", "1 2 3\n")
    b.data("data/d1.txt", "1 2 3\n")
    result = b.cli("build")
    assert result.returncode == 0, result.stderr
    page = (b.output / "index.html").read_text()
    sections = {m.group(1): m.group(0)
                for m in re.finditer(r'<section class="group" id="group-([a-z0-9-]+)".*?</section>', page, re.S)}
    assert list(sections) == ["web", "disks", "tapes", "sensors"]  # board order
    assert 'data-family="nic-{stem}"' in sections["web"] and "no file matches nothing/nic-*.txt" in sections["web"]
    assert 'data-family="tape-{stem}"' in sections["tapes"] and ">Tapes</a></h2>" in sections["tapes"]
    assert "data-family" not in sections["disks"]
    status = b.status()
    assert {"name": "tape-{stem}", "foreach": "nothing/tape-*.txt", "members": 0, "group": "Tapes"} in status["families"]
    assert json.loads((b.output / "status/tapes.json").read_text()) == {"group": "Tapes", "charts": []}


def test_the_export_puts_an_empty_family_in_its_own_groups_section(tmp_path):
    b = Board(tmp_path / "board").write(EMPTY_FAMILIES)
    b.data("data/w1.txt", "1 2 3\n")
    b.data("data/d1.txt", "1 2 3\n")
    assert b.cli("build").returncode == 0
    out = tmp_path / "board.html"
    result = b.cli("export", "-c", str(b.file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    sections = {m.group(1): m.group(0)
                for m in re.finditer(r'<section class="group" id="group-([a-z0-9-]+)".*?</section>', page, re.S)}
    assert list(sections) == ["web", "disks", "sensors", "tapes"]  # a group with no chart: a section at the end
    assert 'data-family="nic-{stem}"' in sections["web"] and 'data-family="tape-{stem}"' in sections["tapes"]
    assert "data-family" not in sections["disks"] and ">Tapes</h2>" in sections["tapes"]
