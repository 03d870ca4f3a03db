"""A full disk or a read-only output folder fails the render cleanly, and the next build after
the problem is gone succeeds. Needs root to mount a small tmpfs as the output folder."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from conftest import IN_CI, temp_files


def need_mount() -> None:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI must run these tests as root (they mount a tmpfs)")
        pytest.skip("needs root to mount a tmpfs")


@pytest.fixture
def on_tmpfs(built_snapshot):
    """The built board with its output folder on a fresh 2 MiB tmpfs (contents copied over)."""
    need_mount()
    b = built_snapshot.restore()
    shutil.rmtree(b.output)
    b.output.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(b.output)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    try:
        shutil.copytree(built_snapshot.copy / "public", b.output, symlinks=True, dirs_exist_ok=True)
        yield b
    finally:
        subprocess.run(["umount", str(b.output)], check=True)


def fill(folder) -> os.PathLike:
    """Fill the file system holding folder to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_full_disk_fails_cleanly_and_next_build_succeeds(on_tmpfs):
    board = on_tmpfs
    old = (board.output / "a.png").read_bytes()
    board.data("data/a.txt", "9 8 7 6 5 4 3 2 1\n")
    filler = fill(board.output)

    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "a.png" in line and "No space left on device" in line]
    assert len(lines) == 1, result.stderr
    assert (board.output / "a.png").read_bytes() == old
    assert temp_files(board.output) == []

    filler.unlink()
    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert (board.output / "a.png").read_bytes() != old
    assert board.chart("a")["state"] == "ok" and board.chart("a")["failures"] == 1
    assert temp_files(board.output) == []


def test_read_only_output_fails_cleanly_and_next_build_succeeds(on_tmpfs):
    board = on_tmpfs
    old = (board.output / "a.png").read_bytes()
    board.data("data/a.txt", "9 8 7 6 5 4 3 2 1\n")
    subprocess.run(["mount", "-o", "remount,ro", str(board.output)], check=True)
    try:
        result = board.cli("build")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(board.output)], check=True)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "a.png" in line and "Read-only file system" in line]
    assert (board.output / "a.png").read_bytes() == old

    result = board.cli("build")
    assert result.returncode == 0, result.stderr
    assert (board.output / "a.png").read_bytes() != old
    assert temp_files(board.output) == []
