"""Imported by the render pool's forkserver only (pool.PRELOAD lists it), never elsewhere.

The forkserver has matplotlib loaded and, like every process started from plotboard's, holds
the caller's stdout and stderr. When its owner exits, a normal interpreter shutdown would
take it about 0.2 s, and a caller reading plotboard's output (cron, a pipe, a test) waits
for that too. The forkserver has nothing to flush or save, so it leaves at once instead.
"""

import atexit
import os

atexit.register(os._exit, 0)
