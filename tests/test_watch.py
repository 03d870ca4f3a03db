"""The input watcher: which folders, which paths count, and a real observer's events."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import REPO, cli_env, wait_for

from renderer.board.config import load_board
from renderer.board.inputs import expand, glob_match, pattern_base
from renderer.daemon.watch import Matcher, Watcher, plan


@pytest.mark.parametrize("pattern, path, expected", [
    ("/d/data/*.csv", "/d/data/cpu.csv", True),
    ("/d/data/*.csv", "/d/data/.cpu.csv", False),  # glob skips hidden names
    ("/d/data/*.csv", "/d/data/sub/cpu.csv", False),
    ("/d/data/*.csv", "/d/data/cpu.csv.tmp", False),
    ("/d/data/**/*.csv", "/d/data/cpu.csv", True),
    ("/d/data/**/*.csv", "/d/data/a/b/cpu.csv", True),
    ("/d/data/**/*.csv", "/d/data/.hidden/cpu.csv", False),
    ("/d/data/host-?/load.txt", "/d/data/host-1/load.txt", True),
    ("/d/data/host-?/load.txt", "/d/data/host-12/load.txt", False),
    ("/d/data/[ab].txt", "/d/data/a.txt", True),
    ("/d/data/[ab].txt", "/d/data/c.txt", False),
])
def test_glob_match_agrees_with_glob(pattern, path, expected):
    assert glob_match(pattern, path) is expected


@pytest.mark.parametrize("pattern", ["*.csv", "**/*.csv", "**", "data/**", "data/**/*", "**/x/*.csv", "data/*",
                                     "data/[ab].csv", "data/?.csv", "*/*", ".hidden/*", "data/**/.*"])
def test_the_watcher_and_the_expansion_agree_on_which_files_a_pattern_names(tmp_path: Path, pattern: str):
    """One set of rules: a file the watcher says a pattern concerns is one the expansion finds."""
    files = ["a.csv", "data/a.csv", "data/b.csv", "data/c.txt", "data/.h.csv", "data/x/y.csv", "data/x/z/w.csv",
             ".hidden/a.csv", "data/.hidden/b.csv", "x/q.csv"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1")
    full = os.path.join(str(tmp_path), pattern)
    found = set(expand([full]))
    matched = {str(tmp_path / name) for name in files if glob_match(full, str(tmp_path / name))}
    assert found == matched


def test_pattern_base():
    assert pattern_base("/d/data/cpu.csv") == ("/d/data", False)
    assert pattern_base("/d/data/*.csv") == ("/d/data", False)
    assert pattern_base("/d/data/*/x.csv") == ("/d/data", True)
    assert pattern_base("/d/**/x.csv") == ("/d", True)


BOARD = """
[board]
output = "public"

[[charts]]
name = "a"
plot = "plots:line"
inputs = ["data/a.txt", "later/deep/x.txt"]

[[charts]]
name = "b"
plot = "plots:line"
inputs = ["data/**/*.csv", "public2/*.png"]
"""


def test_plan_and_matcher(tmp_path: Path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "plots.py").write_text("def line(fig, inputs):\n    pass\n")
    (tmp_path / "plotboard.toml").write_text(BOARD)
    board = load_board(tmp_path / "plotboard.toml")
    root = str(board.root)
    # data/sub is covered by the recursive watch on data; later/deep does not exist yet, so its
    # nearest existing ancestor (the board's folder, which holds the plot module too) stands in.
    assert plan(board) == {f"{root}/data": True, root: False}
    m = Matcher(board)
    assert m.charts(f"{root}/data/a.txt") == {"a"}
    assert m.charts(f"{root}/data/sub/x.csv") == {"b"}
    assert m.charts(f"{root}/plots.py") == {"a", "b"}
    assert m.charts(f"{root}/data/b.txt") == set()
    assert m.charts(f"{root}/public2/x.png") == {"b"}
    (tmp_path / "public").mkdir()
    (tmp_path / ".plotboard").mkdir()
    assert m.charts(f"{root}/public/a.png") == set()  # never our own output
    assert m.charts(f"{root}/.plotboard/state.json") == set()
    (tmp_path / "later" / "deep").mkdir(parents=True)
    assert plan(board) == {f"{root}/data": True, root: False, f"{root}/later/deep": False}


class Recorder:
    """A watcher plus everything it reported."""

    def __init__(self, poll: bool = False) -> None:
        self.wakes = threading.Semaphore(0)
        self.watcher = Watcher(self.wakes.release, poll=poll, poll_interval=0.1)
        self.changes = []

    def seen(self, path: Path, moved: bool | None = None) -> bool:
        self.changes.extend(self.watcher.take())
        return any(c.path == str(path) and (moved is None or c.moved == moved) for c in self.changes)


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.watcher.stop()


def test_observer_reports_writes_deletes_and_moves_into_place(tmp_path: Path, recorder: Recorder):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    recorder.watcher.watch({str(data): False})
    target = data / "cpu.csv"
    target.write_text("1\n")
    wait_for(lambda: recorder.seen(target), 60, "the write")
    assert recorder.wakes.acquire(timeout=60)
    # A careful producer: temp file, then rename onto the input. Only the move names the input.
    recorder.changes.clear()
    temp = data / ".cpu.csv.tmp"
    temp.write_text("2\n")
    os.replace(temp, target)
    wait_for(lambda: recorder.seen(target, moved=True), 60, "the move into place")
    recorder.changes.clear()
    target.unlink()
    wait_for(lambda: recorder.seen(target), 60, "the delete")
    # A folder watched without recursion reports the files in it, not those in its subfolders.
    # (Written before the next file in the watched folder: events come in order, so by the time
    # that one is seen, one for `below` would have been too.)
    recorder.changes.clear()
    below = data / "sub" / "other.csv"
    below.write_text("x")
    target.write_text("3\n")
    wait_for(lambda: recorder.seen(target), 60, "the new file")
    assert not recorder.seen(below)


def inotify_masks() -> list[int]:
    """The event masks of this process's inotify watches, as the kernel lists them."""
    masks = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        masks += [int(part[5:], 16) for part in info.split() if part.startswith("mask:")]
    return masks


def test_the_kernel_is_not_asked_for_the_opens_and_reads_of_each_render(tmp_path: Path, recorder: Recorder):
    """A worker opens and reads its inputs in every render: IN_OPEN and IN_CLOSE_NOWRITE are not
    asked for, so they never cross the observer's threads; writes, closes after writing, moves,
    creations and deletions are."""
    before = set(inotify_masks())
    recorder.watcher.watch({str(tmp_path): False})
    wait_for(lambda: set(inotify_masks()) - before, 60, "the watch to be added")
    [mask] = set(inotify_masks()) - before
    in_open, in_close_nowrite = 0x20, 0x10
    wanted = {"modify": 0x2, "attrib": 0x4, "close_write": 0x8, "moved_from": 0x40, "moved_to": 0x80,
              "create": 0x100, "delete": 0x200, "delete_self": 0x400}
    assert mask & (in_open | in_close_nowrite) == 0, hex(mask)
    assert all(mask & bit for bit in wanted.values()), hex(mask)


def test_a_folder_deleted_and_created_again_is_watched_afresh(tmp_path: Path, recorder: Recorder):
    data = tmp_path / "data"
    data.mkdir()
    recorder.watcher.watch({str(data): False, str(tmp_path): False})
    os.rename(data, tmp_path / "old")
    (tmp_path / "old").rename(tmp_path / "gone")
    data.mkdir()
    wait_for(lambda: recorder.seen(data), 60, "the folder's creation")
    recorder.watcher.watch({str(data): False, str(tmp_path): False})  # what the daemon does on folder events
    (data / "x.txt").write_text("new")
    wait_for(lambda: recorder.seen(data / "x.txt"), 60, "a write in the new folder")


def test_polling_mode_sees_changes(tmp_path: Path):
    r = Recorder(poll=True)
    try:
        assert r.watcher.mode == "polling"
        r.watcher.watch({str(tmp_path): False})
        (tmp_path / "a.txt").write_text("1")
        wait_for(lambda: r.seen(tmp_path / "a.txt"), 60, "a polled change")
    finally:
        r.watcher.stop()


LIMIT_SCRIPT = """
import ctypes, errno, logging, os, sys, time
from pathlib import Path
import watchdog.observers, watchdog.observers.polling  # imported while the repository is readable
from renderer.daemon.watch import Watcher

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
folder = Path(sys.argv[1])
os.setgid(int(sys.argv[2]))
os.setuid(int(sys.argv[2]))  # a user of its own: the instances it uses up are its own
libc = ctypes.CDLL(None, use_errno=True)
instances = []
while True:  # use up this user's inotify instances (fs.inotify.max_user_instances)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        assert ctypes.get_errno() == errno.EMFILE, ctypes.get_errno()
        break
    instances.append(fd)
watcher = Watcher(lambda: None, poll_interval=0.1)
watcher.watch({str(folder): False})
print(watcher.mode, flush=True)
(folder / "a.txt").write_text("changed")
deadline = time.monotonic() + 60
seen = []
while time.monotonic() < deadline and not any(c.path.endswith("a.txt") for c in seen):
    seen += watcher.take()
    time.sleep(0.05)
print("seen" if seen else "missed", flush=True)
watcher.stop()
"""


def test_inotify_limit_gives_a_clear_message_and_falls_back_to_polling(tmp_path: Path):
    """The inotify instances of the daemon's user run out: watchdog 7.1.0 fails when the observer
    is made, 7.1.1 at its first watch; either way the watcher says why and polls."""
    if os.geteuid() != 0:
        assert not os.environ.get("CI"), "CI runs this test as root"
        pytest.skip("needs root, to use up the inotify instances of a user of its own")
    uid = 40000 + os.getpid() % 20000  # no process of this user exists: the limit is its own
    folder = Path(tempfile.mkdtemp(prefix="plotboard-limit-"))  # in /tmp: that user can reach it
    os.chown(folder, uid, uid)
    try:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(LIMIT_SCRIPT), str(folder), str(uid)],
                                env=cli_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["polling", "seen"], result.stdout + result.stderr
    assert "EMFILE" in result.stderr
    assert "max_user_instances" in result.stderr and "--poll" in result.stderr
