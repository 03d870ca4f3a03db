"""Imported by the render pool's forkserver (workers.PRELOAD lists it): makes that process's exit quick.

The forkserver has matplotlib loaded and, like every process started from plotboard's, holds
the caller's stdout and stderr. When its owner exits, a normal interpreter shutdown would
take it about 0.2 s, and a caller reading plotboard's output (cron, a pipe, a test) waits
for that too. The forkserver has nothing to flush or save, so it leaves at once instead.

Only the forkserver itself may do so: an `atexit` hook decides the exit status of whatever
process registers it, and registered on import it once made pytest exit 0 with tests failing.
The forkserver imports its preload modules from within `multiprocessing.forkserver.main`, so
the hook is registered only when that function is on the stack of this import.
"""

import atexit
import os
import sys


def in_forkserver() -> bool:
    """Whether this module is being imported by multiprocessing's forkserver while it starts."""
    server = sys.modules.get("multiprocessing.forkserver")
    main = getattr(server, "main", None)
    code = getattr(main, "__code__", None)
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


if in_forkserver():
    atexit.register(os._exit, 0)
