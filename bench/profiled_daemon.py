"""`python -m renderer` under cProfile, for the benches (kept out of the product).

    python bench/profiled_daemon.py STATS_FILE run -c plotboard.toml

Runs renderer.cli.main with the given arguments, timed by the thread's CPU time. The profiler is off until the process gets
SIGUSR1; SIGUSR2 turns it off and writes what it gathered to STATS_FILE (pstats format). Only the
main (loop) thread is profiled: the senders' threads are not (bench/alerts.py counts their CPU
from psutil's per-thread times instead).
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time


def main() -> int:
    stats_file, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile(time.thread_time)  # the loop thread's CPU, not the wall clock of a loaded machine

    def on(signum, frame) -> None:
        profiler.enable()

    def off(signum, frame) -> None:
        profiler.disable()
        profiler.dump_stats(stats_file)

    signal.signal(signal.SIGUSR1, on)
    signal.signal(signal.SIGUSR2, off)
    from renderer.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
