"""Issue 26: alerts link to the image of their moment. A chart with `history = N` gives each
event a `moment`: the history view's link at the stamp of the image shown when the event
happened (history/NAME/STAMP.png once replaced); the page opens the view at that image, live
while it is still the current one. A real `plotboard run` and webhook; real Chromium and nginx."""

from __future__ import annotations

from browser import NGINX, Nginx, remove_tree, require_tool, served_dir
from conftest import FAST, Board, chart, wait_for
from test_alerts import PLOTS, receivers  # noqa: F401 - the fixture
from test_history_page import open_page, view
from test_page import LONG_LIVED, browser, context, no_leaks  # noqa: F401 - the module's fixtures

URL = "https://board.example.com/ops/"


def stamp(rendered_at: str) -> str:
    return rendered_at.replace("-", "").replace(":", "")


def moment_board(root, url: str) -> Board:
    text = FAST.format(timeout="20s").replace("[board]\n", f'[board]\nurl = "{URL}"\n')
    text += chart("a", "plots:maybe", "data/a.txt", "history = 3\n") + chart("n", "plots:maybe", "data/a.txt")
    text += f'\n[[alerts]]\nname = "ops"\nwebhook = "{url}"\ngroup_wait = "300ms"\n'
    return Board(root).write(text, plots=PLOTS)


def event(r, kind: str, name: str) -> dict:
    return next(e for body in r.bodies for e in body["events"] if (e["event"], e["chart"]) == (kind, name))


def test_an_event_names_the_image_of_its_moment(tmp_path, daemons, receivers):  # noqa: F811
    r = receivers()
    b = moment_board(tmp_path / "b", r.url)
    b.data("data/a.txt", "good\n")
    d = daemons(b)
    first = d.wait_state("a", state="ok")["rendered_at"]
    d.wait_state("n", state="ok")
    shown = (b.output / "a.png").read_bytes()
    b.data("data/a.txt", "fail\n")
    r.wait(("error", "a"), ("error", "n"))
    assert event(r, "error", "a")["moment"] == f"{URL}#history-a@{stamp(first)}"
    assert event(r, "error", "n")["moment"] is None  # n keeps no history
    b.data("data/a.txt", "good again, and longer\n")
    r.wait(("recovered", "a"))
    now = wait_for(lambda: (s := d.state("a")).get("state") == "ok" and s["rendered_at"] != first and s["rendered_at"],
                   60, "status.json to show the good render")  # pages may lag the webhook
    assert event(r, "recovered", "a")["moment"] == f"{URL}#history-a@{stamp(now)}"
    kept = b.output / "history" / "a" / f"{stamp(first)}.png"
    wait_for(kept.is_file, 60, f"{kept} to be kept")
    assert kept.read_bytes() == shown  # where the error's moment said the image would be


def test_the_moment_link_opens_the_history_view_at_that_image(tmp_path, receivers, context):  # noqa: F811
    require_tool(NGINX)
    r = receivers()
    root = served_dir()
    try:
        b = moment_board(root / "board", r.url)
        b.data("data/a.txt", "good\n")
        assert b.cli("build").returncode == 0
        shown = (b.output / "a.png").read_bytes()
        b.data("data/a.txt", "fail\n")
        assert b.cli("build").returncode == 1
        link = event(r, "error", "a")["moment"]
        assert link.startswith(URL + "#history-a@")
        server = Nginx(b.output, root / "nginx").start()
        LONG_LIVED.add(server.proc.pid)
        try:
            fragment = link[len(URL):]
            page, log = open_page(context(), server.url + fragment)  # the image is still the current one
            wait_for(lambda: (v := view(page)) and v["open"] and v["where"] == "live", 60, "the view, live")
            page.close()
            for i in range(2):  # two more images: the error's moment is now the older past image
                b.data("data/a.txt", "good" + "!" * (5 + i) + "\n")
                assert b.cli("build").returncode == 0
            past = f"history/a/{link.rpartition('@')[2]}.png"
            assert (b.output / past).read_bytes() == shown
            page, log = open_page(context(), server.url + fragment)
            wait_for(lambda: (v := view(page)) and v["open"] and v["src"] == past and v["loaded"], 60,
                     f"the view at {past} ({view(page)})")
            assert view(page)["where"] == "2 of 2 back"
            data = page.evaluate("fetch(document.querySelector('.hist img').src).then((r) => r.arrayBuffer())"
                                 ".then((b) => [...new Uint8Array(b)])")
            assert bytes(data) == shown
            assert log.problems() == []
        finally:
            server.stop()
            LONG_LIVED.discard(server.proc.pid if server.proc else -1)
    finally:
        remove_tree(root)
