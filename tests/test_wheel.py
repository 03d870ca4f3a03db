"""A regular (non-editable) wheel, installed into a fresh venv, builds the repository's demo board."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from conftest import REPO


def run(*args, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kw)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_in_a_fresh_venv_builds_the_demo_board(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, REPO)
    [wheel] = dist.glob("plotboard-*.whl")

    # matplotlib and friends come from the test's own environment (a .pth line naming its
    # site-packages, which also works when that environment is itself a venv, where
    # --system-site-packages would reach the base interpreter instead); plotboard itself
    # comes from the wheel alone (--no-deps --no-index), installed by the outer pip. A .pth
    # line adds a folder without running the .pth files inside it, so the outer editable
    # install of plotboard stays out.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    outer = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    [site_packages] = (venv / "lib").glob("python3*/site-packages")
    (site_packages / "outer-env.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))
    run(sys.executable, "-m", "pip", "--python", venv / "bin/python", "install", "--quiet",
        "--no-deps", "--no-index", "--disable-pip-version-check", wheel)

    demo = tmp_path / "demo"
    demo.mkdir()
    for name in ("plotboard.toml", "charts.py", "data"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, demo / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MPLBACKEND"] = "Agg"

    where = run(venv / "bin/python", "-c", "import renderer, renderer.pages.model as p; print(renderer.__file__); print(p.site_dir())",
                cwd=elsewhere, env=env).stdout.split()
    for path in where:
        assert Path(path).is_relative_to(venv), f"not from the wheel: {path}"

    result = subprocess.run([str(venv / "bin/plotboard"), "build", "-c", str(demo / "plotboard.toml")],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = demo / "public"
    charts = json.loads((out / "status.json").read_text())["charts"]  # the family expanded
    assert len(charts) >= 4 and len(charts) > len(tomllib.loads((demo / "plotboard.toml").read_text())["charts"])
    for chart in charts:
        for image in [chart["image"], *(w["image"] for w in chart.get("windows", []))]:
            assert (out / image).stat().st_size > 0
    assert (out / "index.html").is_file() and (out / "status.json").is_file()
    assert (out / "static/board.css").is_file() and (out / "static/board.js").is_file()
    assert 'href="static/board.css' in (out / "index.html").read_text()
    exported = subprocess.run([str(venv / "bin/plotboard"), "export", "-c", str(demo / "plotboard.toml")],
                              cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)  # its template
    assert exported.returncode == 0 and "data:image/png;base64," in (elsewhere / "board.html").read_text(), exported.stderr
