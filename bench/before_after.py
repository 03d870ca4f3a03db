"""Two trees of plotboard, measured in one run: each benchmark of bench/run.py is run by the
`before` tree's own bench/run.py, then by the `after` tree's, back to back, so both see the same
machine at about the same moment. Prints each figure's median in both and after/before.

    python bench/before_after.py /path/to/before-tree [names...]     # --quick runs
    python bench/before_after.py BEFORE --full latency noop          # full runs of two benchmarks

Used to check that a change which should not cost anything (a move of modules, say) does not.
Each tree is run with its own code (its module names may differ), from this interpreter.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

AFTER = Path(__file__).resolve().parent.parent
DEFAULT = ["savefig", "png", "latency", "build", "noop", "throughput", "memory", "page"]


def run_one(tree: Path, name: str, quick: bool) -> list[dict]:
    """The rows of one benchmark as `tree`'s own bench/run.py reports them."""
    results = tree / "bench" / "results"
    seen = set(results.glob("*.json")) if results.is_dir() else set()
    cmd = [sys.executable, str(tree / "bench" / "run.py"), name] + (["--quick"] if quick else [])
    subprocess.run(cmd, cwd=tree, check=True, stdout=subprocess.DEVNULL)
    new = sorted(set(results.glob("*.json")) - seen)
    return json.loads(new[-1].read_text())["rows"]


def median(value: object) -> float | None:
    if isinstance(value, dict):
        return value.get("median")
    return value if isinstance(value, (int, float)) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path, help="the tree to compare with (e.g. a git worktree of an older commit)")
    ap.add_argument("names", nargs="*", default=DEFAULT, help=f"benchmarks (default: {' '.join(DEFAULT)})")
    ap.add_argument("--full", action="store_true", help="full runs instead of --quick")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"before {args.before.resolve()}, after {AFTER}", flush=True)
    lines = ["| benchmark | figure | before | after | after/before |", "| --- | --- | --- | --- | --- |"]
    for name in args.names:
        t0 = time.perf_counter()
        before = run_one(args.before.resolve(), name, not args.full)
        after = run_one(AFTER, name, not args.full)
        for b, a in zip(before, after):
            mb, ma = median(b["plotboard"]), median(a["plotboard"])
            ratio = f"{ma / mb:.2f}" if mb and ma is not None else "-"
            fmt = (lambda v: "-" if v is None else f"{v:.4g} {a['unit']}".strip())
            lines.append(f"| {name} | {a['figure']} | {fmt(mb)} | {fmt(ma)} | {ratio} |")
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
