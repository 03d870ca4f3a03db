"""renderer.render.digests: a source file's digest is read again whenever it may have changed."""

import hashlib
import os
import time

from renderer.render import digests


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def later(seconds: float):
    return lambda: time.time() + seconds


def test_a_file_edited_twice_in_a_row_with_the_same_size_gives_each_content(tmp_path):
    path = tmp_path / "plots.py"
    path.write_bytes(b"x = 1\n")
    assert digests.file_digest(str(path)) == sha(b"x = 1\n")
    path.write_bytes(b"x = 2\n")  # same size, most likely within the same clock tick
    assert digests.file_digest(str(path)) == sha(b"x = 2\n")
    assert str(path) not in digests._known  # too recent to trust its stat


def test_a_settled_file_is_kept_until_its_stat_changes(tmp_path):
    path = tmp_path / "plots.py"
    path.write_bytes(b"x = 1\n")
    assert digests.file_digest(str(path), clock=later(5)) == sha(b"x = 1\n")
    assert digests._known[str(path)][1] == sha(b"x = 1\n")
    st = path.stat()
    path.write_bytes(b"x = 3\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: the ctime still tells
    assert digests.file_digest(str(path), clock=later(5)) == sha(b"x = 3\n")
    os.replace(tmp_path / "plots.py", tmp_path / "old.py")
    (tmp_path / "plots.py").write_bytes(b"x = 4\n")
    assert digests.file_digest(str(path), clock=later(5)) == sha(b"x = 4\n")


def test_a_missing_or_unreadable_file_has_no_digest(tmp_path):
    assert digests.file_digest(str(tmp_path / "gone.py")) is None
    assert digests.file_digest(str(tmp_path)) is None  # a folder
    path = tmp_path / "plots.py"
    path.write_bytes(b"x = 1\n")
    digests.file_digest(str(path), clock=later(5))
    path.unlink()
    assert digests.file_digest(str(path)) is None
