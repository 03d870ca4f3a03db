"""File events the daemon never hears: an inotify queue overflow makes it rescan every chart, and a
periodic check finds changes no event reported (here: a folder reached through a symlink, which
a recursive inotify watch does not cover)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import chart, fast_board, write_data


def test_an_inotify_queue_overflow_rescans_and_renders_the_change_it_lost(tmp_path: Path, daemons):
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    b = fast_board(tmp_path / "board", chart("a", inputs="data/a.txt"))
    write_data(b.data("data/a.txt", ""), [1, 2, 3])
    d = daemons(b)  # check_every is 1 minute: only the overflow can find the change in time
    d.wait_state("a", state="ok", renders=1)
    d.send(signal.SIGSTOP)  # its inotify reader stops; the kernel queues, then drops, events
    try:
        scratch = b.root / "data" / "scratch.log"
        for _ in range(limit):  # modify, close: 2 events each (opens are not asked for), past the queue's limit
            scratch.write_text("x")
        write_data(b.root / "data" / "a.txt", [3, 2, 1])  # its events are lost
    finally:
        d.send(signal.SIGCONT)
    d.wait_state("a", state="ok", renders=2, timeout=30)
    assert "inotify queue overflowed" in d.log


def test_the_periodic_check_renders_a_change_no_event_reported(tmp_path: Path, daemons):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_data(elsewhere / "x.txt", [1, 2, 3])
    b = fast_board(tmp_path / "board", chart("a", inputs="data/**/*.txt"))
    b.file.write_text(b.file.read_text().replace("[board]\n", '[board]\ncheck_every = "1s"\n'))
    (b.root / "data").mkdir()
    os.symlink(elsewhere, b.root / "data" / "link")  # inotify's recursive watch does not follow it
    d = daemons(b)
    d.wait_state("a", state="ok", renders=1)
    before = d.image("a")
    write_data(elsewhere / "x.txt", [3, 2, 1, 5])
    d.new_image("a", before, timeout=60)
    assert "a change no file event reported" in d.log
