"""The daemon's work per change does not grow with the board (issue 13): counted, not timed.

A board of 200 and one of 2,000 charts, the same change to one chart: the page model
recomputes one entry and renders one card, one group's file and page are rewritten, and a
board at rest costs the repair check no listing of the output folder.
"""

from __future__ import annotations

import os

import pytest

from conftest import Board
from renderer.pages import model as pages_module
from renderer.daemon import repair_check, upkeep
from renderer.daemon.sweep import Sweep

BOARD = """
[board]
workers = 1
page_limit = 100

[defaults]
size = [2, 1]
dpi = 40
hidpi = false
plot = "plots:line"
"""


def board_of(root, n: int) -> Board:
    charts = "".join(f'[[charts]]\nname = "c{i}"\ngroup = "g{i // 50}"\ninputs = ["data/c{i}.txt"]\n' for i in range(n))
    b = Board(root).write(BOARD + charts)
    for i in range(n):
        b.data(f"data/c{i}.txt", "1 2\n")
    return b


def counting(monkeypatch, module, name: str) -> list:
    """Count the calls of module.name (the real function still runs)."""
    calls: list = []
    real = getattr(module, name)

    def counted(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("n", [200, 2000])
def test_one_change_costs_one_entry_one_card_and_one_group_whatever_the_board(tmp_path, monkeypatch, n):
    from renderer.board.config import load_board
    from renderer.pages.write import write_pages
    from renderer.store.records import ChartRecord

    b = board_of(tmp_path / "b", n)
    board = load_board(b.file)
    records = {c.name: ChartRecord(hash="a" * 16, rendered_at=1000.0, renders=1, files=[f"{c.name}.png"])
               for c in board.charts}
    for c in board.charts:
        (tmp_path / "b" / "public").mkdir(parents=True, exist_ok=True)
        (tmp_path / "b" / "public" / f"{c.name}.png").write_bytes(b"png")
    model = pages_module.Pages()
    write_pages(board, records, 1001.0, model, None)  # the first write: everything
    entries = counting(monkeypatch, pages_module, "chart_entry")
    cards = counting(monkeypatch, pages_module, "render_card")
    out = tmp_path / "b" / "public"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.*")}
    records["c77"].hash, records["c77"].rendered_at = "b" * 16, 1002.0
    write_pages(board, records, 1003.0, model, {"c77"})
    assert len(entries) == 1 and len(cards) == 1
    rewritten = sorted(str(p.relative_to(out)) for p, t in before.items() if p.stat().st_mtime_ns != t)
    assert rewritten == ["groups/g1.html", "status.json", "status/g1.json", "status/index.json"], rewritten
    write_pages(board, records, 1004.0, model, set())
    assert len(entries) == 1 and len(cards) == 1, "a write with nothing changed recomputed a chart"


def test_a_board_at_rest_costs_the_repair_check_no_listing(tmp_path, monkeypatch):
    from renderer.board.config import load_board
    from renderer.daemon.schedule import Scheduler
    from renderer.store.records import ChartRecord

    b = board_of(tmp_path / "b", 100)
    board = load_board(b.file)
    board.output.mkdir(parents=True)
    records = {}
    for c in board.charts:
        (board.output / f"{c.name}.png").write_bytes(b"png")
        records[c.name] = ChartRecord(hash="a" * 16, rendered_at=1.0, files=[f"{c.name}.png"])
    scheduler = Scheduler(lambda: 0.0)
    for c in board.charts:
        scheduler.add(c.name)
    listings = counting(monkeypatch, repair_check.os, "listdir")
    repair = repair_check.Repair()
    repair.check(board, records, scheduler, 0.0)
    repair.check(board, records, scheduler, 5.0)
    assert len(listings) == 1, "the output folder was listed again though it had not changed"
    assert all(scheduler[c.name].reason is None for c in board.charts)
    (board.output / "c42.png").unlink()
    repair.check(board, records, scheduler, 10.0)
    assert len(listings) == 2 and scheduler["c42"].reason == "repair"
    assert [c.name for c in board.charts if scheduler[c.name].reason] == ["c42"]


def test_the_periodic_check_fingerprints_no_chart_whose_files_look_as_when_it_rendered(tmp_path, monkeypatch):
    from renderer.board.config import load_board
    from renderer.daemon.schedule import Scheduler
    from renderer.store.records import ChartRecord

    b = board_of(tmp_path / "b", 100)
    board = load_board(b.file)
    scheduler, sweep = Scheduler(lambda: 0.0), Sweep()
    records = {}
    for c in board.charts:
        scheduler.add(c.name)
        records[c.name] = ChartRecord(fingerprint="x", rendered_at=1.0)
        sweep.rendered(c.name, upkeep.files_seen(c))  # as the daemon does when a render succeeds
    fingerprints = counting(monkeypatch, upkeep, "fingerprint")
    for step in range(12):  # one whole cycle of check_every (1 minute) in 5-s slices
        sweep.step(board, records, scheduler, 5.0, now=5.0 * step)
    assert fingerprints == []
    (b.root / "data/c7.txt").write_text("9 9 9 9\n")  # a change no event reported
    for step in range(12, 24):
        sweep.step(board, records, scheduler, 5.0, now=5.0 * step)
    assert len(fingerprints) == 1 and scheduler["c7"].reason == "change"


def test_a_listing_that_fails_for_want_of_descriptors_renders_nothing_again(tmp_path, caplog):
    """EMFILE (real: the descriptor limit lowered to the descriptors open) is not an empty
    output folder: nothing is rendered again, one warning says so, the next check lists."""
    import resource

    from renderer.board.config import load_board
    from renderer.daemon.schedule import Scheduler
    from renderer.store.records import ChartRecord

    b = board_of(tmp_path / "b", 3)
    board = load_board(b.file)
    board.output.mkdir(parents=True)
    records = {}
    scheduler = Scheduler(lambda: 0.0)
    for c in board.charts:
        (board.output / f"{c.name}.png").write_bytes(b"png")
        records[c.name] = ChartRecord(hash="a" * 16, rendered_at=1.0, files=[f"{c.name}.png"])
        scheduler.add(c.name)
    repair = repair_check.Repair()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        repair.check(board, records, scheduler, 0.0)
        (board.output / "c1.png").unlink()  # a change of the folder: the next check lists again
        repair.check(board, records, scheduler, 5.0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert all(scheduler[c.name].reason is None for c in board.charts), "a failed listing rendered charts again"
    warnings = [r.getMessage() for r in caplog.records if "cannot list" in r.getMessage()]
    assert len(warnings) == 1 and str(board.output) in warnings[0], warnings
    repair.check(board, records, scheduler, 10.0)
    assert [c.name for c in board.charts if scheduler[c.name].reason] == ["c1"]


def test_a_missing_output_folder_renders_everything_again(tmp_path):
    from renderer.board.config import load_board
    from renderer.daemon.schedule import Scheduler
    from renderer.store.records import ChartRecord

    b = board_of(tmp_path / "b", 3)
    board = load_board(b.file)
    scheduler = Scheduler(lambda: 0.0)
    records = {}
    for c in board.charts:
        records[c.name] = ChartRecord(hash="a" * 16, rendered_at=1.0, files=[f"{c.name}.png"])
        scheduler.add(c.name)
    repair_check.Repair().check(board, records, scheduler, 0.0)
    assert all(scheduler[c.name].reason == "repair" for c in board.charts)


def test_the_sweep_forgets_the_members_of_a_family_once_their_files_are_gone(tmp_path):
    """A family whose files rotate (a file a day) must not leave one entry a day behind in
    what the sweep remembers: after the members go (the family expanded again), none is kept."""
    from renderer.board.config import expand_again, load_board
    from renderer.daemon.schedule import Scheduler
    from renderer.store.records import ChartRecord

    b = Board(tmp_path / "b").write(BOARD + '[[charts]]\nname = "day-{match}"\nforeach = "data/day-*.txt"\ninputs = ["{path}"]\n'
                                    '[[charts]]\nname = "fixed"\ninputs = ["data/fixed.txt"]\n')
    for name in ("day-1", "day-2", "day-3", "fixed"):
        b.data(f"data/{name}.txt", "1 2\n")
    board = load_board(b.file)
    scheduler, sweep = Scheduler(lambda: 0.0), Sweep()
    records = {}
    for c in board.charts:
        scheduler.add(c.name)
        records[c.name] = ChartRecord(fingerprint="x", rendered_at=1.0)
        sweep.rendered(c.name, upkeep.files_seen(c))
    sweep.step(board, records, scheduler, 60.0, now=0.0)
    assert sorted(sweep.looked) == ["day-1", "day-2", "day-3", "fixed"]
    for name in ("day-1", "day-2"):
        (b.root / f"data/{name}.txt").unlink()
    board = expand_again(board)
    assert sorted(c.name for c in board.charts) == ["day-3", "fixed"]
    sweep.step(board, records, scheduler, 60.0, now=60.0)
    assert sorted(sweep.looked) == ["day-3", "fixed"], sweep.looked
