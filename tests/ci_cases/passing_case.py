"""Run only by tests/test_ci.py, through scripts/test.sh: passes, so the run exits 0."""


def test_passes():
    assert sum([1, 2]) == 3
