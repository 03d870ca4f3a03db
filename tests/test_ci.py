"""The CI's command tells the truth: scripts/test.sh (which .ci/run runs) exits non-zero when a
test fails and 0 when every test passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def run_through_ci_command(case: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # this suite's python
    env = dict(os.environ, PLOTBOARD_TEST_NO_INSTALL="1", PATH=path)
    return subprocess.run(["bash", "scripts/test.sh", "-p", "no:cacheprovider", f"tests/ci_cases/{case}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_failing_test_fails_the_ci_command():
    result = run_through_ci_command("failing_case.py")
    assert "1 failed" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr


def test_a_passing_suite_passes_the_ci_command():
    result = run_through_ci_command("passing_case.py")
    assert "1 passed" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in (REPO / "README.md").read_text()
