"""The limits a render runs under: memory per render, pixels per image, the shortest interval.

The memory limit is RLIMIT_DATA, set in the render process around each render and restored
after it. Measured on the project's 2-core host (Python 3.11, matplotlib 3.11, numpy 2.4): both
RLIMIT_AS and RLIMIT_DATA stop a 4 GiB numpy allocation at once with a MemoryError, but
RLIMIT_AS also counts address space that is reserved and never used: 8 threads that each
allocate a little grow the address space by 590 MiB (glibc reserves 64 MiB per thread arena)
and the data segment by 75 MiB, so an address-space limit fails ordinary plots that use threads
(and numpy/OpenBLAS on hosts with many cores). A warm worker's data segment is ~160 MiB; the
largest image allowed (PIXEL_LIMIT, @2x included) peaks at ~530 MiB: DEFAULT_MAX_MEMORY leaves
room for it and for the plot's own data, and keeps two workers within 2 GiB on a small host.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_MAX_MEMORY = "1GiB"  # per render process, as the board file writes it
LEAST_MAX_MEMORY = 256 * 2**20  # below this, a warm worker cannot draw even a small chart
PIXEL_LIMIT = 40_000_000  # pixels in any one image plotboard writes (an @2x image included)
SIDE_LIMIT = 65_535  # pixels along one side: what matplotlib's Agg renderer can draw
MIN_INTERVAL = 0.1  # seconds: the shortest `every` (and page refresh) a board file may ask for


@contextmanager
def memory_limit(limit: int | None) -> Iterator[None]:
    """Run the block with the process's data segment limited to `limit` bytes (none: as it is).

    Allocations beyond it fail (MemoryError in Python) instead of growing the process until the
    kernel's OOM killer picks a victim. The limit before is restored after the block."""
    if limit is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    new = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
