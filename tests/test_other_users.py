"""Another local user cannot keep plotboard from starting: it may `flock` every file and folder
of the board it can open, and `build` and `run` still start. (The board's lock is a file only
its own user can open; a lock on the board folder held by another user is not plotboard's.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, chart, cli, cli_env, fast_board, write_data
from daemon_helpers import Daemon

HOLDER = """
import fcntl, json, os, sys
root, uid = sys.argv[1], int(sys.argv[2])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
held, fds = [], []
for folder, dirs, files in os.walk(root):
    for path in [folder] + [os.path.join(folder, name) for name in files + dirs]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        fds.append(fd)
        held.append(os.path.relpath(path, root))
print(json.dumps(sorted(set(held))), flush=True)
sys.stdin.read()  # holds every lock until the test closes its stdin
"""


@pytest.fixture
def shared_folder():
    """A folder in /tmp that another user can reach (pytest's tmp_path is in a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="plotboard-users-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def hold_everything(root: Path, uid: int) -> tuple[subprocess.Popen, list[str]]:
    """A process of user `uid` holding an flock on every file and folder under root it can open."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(root), str(uid)], cwd=REPO,
                            env=cli_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"the other user's process did not start: {proc.communicate()[1]}")
    return proc, json.loads(line)


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_another_user_holding_locks_on_the_board_cannot_stop_build_or_run(shared_folder):
    if os.geteuid() != 0:
        assert not os.environ.get("CI"), "CI runs this test as root"
        pytest.skip("needs root, to run a process as another user")
    uid = 40000 + os.getpid() % 20000
    board = fast_board(shared_folder / "b", chart("a", inputs="a.txt"))
    write_data(board.root / "a.txt", [1, 2, 3])
    first = cli("build", "-c", board.file, timeout=120)
    assert first.returncode == 0, first.stderr
    lock = board.root / ".plotboard" / "lock"
    assert lock.stat().st_mode & 0o777 == 0o600
    old = board.root / ".plotboard" / "old-lock"
    old.write_text("plotboard run (pid 1)\n")  # a lock file as older versions left it: others could open it
    old.chmod(0o644)
    os.replace(old, lock)

    proc, held = hold_everything(board.root, uid)
    try:
        assert {".", ".plotboard", "public", ".plotboard/lock", ".plotboard/state.json"} <= set(held), held
        build = cli("build", "-c", board.file, "--force", timeout=120)  # a build waiting for it would take 600 s
        assert build.returncode == 0, build.stderr
        assert "1 rendered" in build.stderr and "Traceback" not in build.stderr, build.stderr
        assert lock.stat().st_mode & 0o777 == 0o600  # replaced: the other user's lock is on the old one
        d = Daemon(board)
        try:
            before = d.image("a")
            write_data(board.root / "a.txt", [3, 1, 2])
            d.new_image("a", before)
            assert d.stop() == 0
        finally:
            d.close()
        assert "Traceback" not in d.log, d.log
        second, again = hold_everything(board.root, uid)  # the lock file as plotboard leaves it is out of reach
        release(second)
        assert ".plotboard/lock" not in again, again
    finally:
        release(proc)
