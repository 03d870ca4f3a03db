"""README.md's first command, run the way a new user pastes it: a fresh virtual environment,
`pip install .` of this checkout into it, and `plotboard demo` from it (on a free port, stopped
with Ctrl-C).

The line is run as README.md writes it, by `sh`, in a copy of this checkout, with two things
of this test's own: `python3` is the interpreter running the tests, and `plotboard demo` gets
`--port` and `--dir`. matplotlib and the other dependencies are the test environment's own
(a sitecustomize.py on PYTHONPATH appends its site-packages to the new environment's path, after
the environment's own), so pip finds them installed and installs plotboard alone, the way it
does on a host that has them already; the build backend comes from pip's usual isolated build.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import psutil

from conftest import REPO, free_port, wait_for
from test_docs import section

LEFT_OUT = {".git", ".venv", "public", ".plotboard", "build", "dist", ".pytest_cache"}  # at the top
NEVER = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


def first_command() -> str:
    """The one line of the first ```sh block of README.md's "Two commands"."""
    block = re.search(r"```sh\n(.*?)```", section("Two commands"), re.S)
    assert block, "README.md's Two commands has no ```sh block"
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 1, f"the first command is not one line a user can paste: {lines}"
    return lines[0]


def checkout(into: Path) -> Path:
    """A copy of this checkout, as a user's clone holds it."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        left = set(NEVER(folder, names))
        return left | (LEFT_OUT & set(names)) if Path(folder) == REPO else left

    shutil.copytree(REPO, into, ignore=ignore, symlinks=True)
    return into


def environment(tmp_path: Path) -> dict[str, str]:
    """The test's own python3 first on PATH, and nothing of the test's environment that could
    stand in for what the line installs: no `plotboard` on PATH, no VIRTUAL_ENV, and this
    checkout's folder off PYTHONPATH."""
    bin_dir, custom = tmp_path / "host-bin", tmp_path / "host-site"
    bin_dir.mkdir()
    custom.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    outer = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    (custom / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"if {p!r} not in sys.path:\n    sys.path.append({p!r})\n" for p in outer))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    path = [d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "plotboard").exists()]
    env["PATH"] = os.pathsep.join([str(bin_dir), *path])
    env["PYTHONPATH"] = str(custom)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_the_readme_s_first_command_installs_plotboard_in_a_fresh_venv_and_runs_the_demo(tmp_path):
    line = first_command()
    assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && "), line
    assert line.endswith(" && plotboard demo"), line
    assert "pip install ." in line, line
    clone = checkout(tmp_path / "plotboard")
    port, demo = free_port(), tmp_path / "demo"
    command = f"{line} --port {port} --dir {shlex.quote(str(demo))}"
    env = environment(tmp_path)
    log = tmp_path / "install-and-demo.log"
    with open(log, "w") as out:
        shell = subprocess.Popen(["sh", "-c", command], cwd=clone, env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        def charts() -> list[dict]:
            assert shell.poll() is None, f"the line ended ({shell.returncode}):\n{log.read_text()[-5000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=5) as answer:
                    return json.load(answer)["charts"]
            except (OSError, ValueError):
                return []

        served = wait_for(lambda: (c := charts()) and all(x["hash"] for x in c) and c, 240,
                          "the installed demo to serve its board with every chart rendered")
        assert len(served) >= 4
        [daemon] = psutil.Process(shell.pid).children()
        assert daemon.cmdline()[1] == str(clone / ".venv/bin/plotboard"), daemon.cmdline()
        venv_python = clone / ".venv/bin/python"
        where = subprocess.run([venv_python, "-c", "import renderer, renderer.pages.model as m; "
                                "print(renderer.__file__); print(m.site_dir())"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        for path in where.stdout.split():
            assert Path(path).is_relative_to(clone / ".venv/lib"), f"not installed by the line: {path}"
        daemon.send_signal(signal.SIGINT)  # Ctrl-C
        assert shell.wait(60) == 0, log.read_text()[-5000:]
    finally:
        if shell.poll() is None:
            for p in psutil.Process(shell.pid).children(recursive=True):
                p.kill()
            shell.kill()
            shell.wait()
    text = log.read_text()
    assert "Successfully installed plotboard" in text, text[-5000:]
    assert "Traceback" not in text, text[-5000:]
