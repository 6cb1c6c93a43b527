"""Keep freed memory in the process: glibc malloc's default thresholds make every update page-fault.

By default glibc serves blocks of 128 KiB and more with mmap and returns them (and free memory at
the heap's top) to the OS on free. A TD3 update allocates and frees activations and gradients of
[2K, 256, 256] floats (0.5 MiB per seed pair), so every update maps fresh pages and the kernel
zero-fills them on first touch: about 110 page faults per update with one seed, 900-1300 with five
(`resource.getrusage`), and the updates/s that go with them. Raising both thresholds keeps freed
blocks for reuse. `make bench` measures the effect. Memory freed stays with the process, so the
resident size follows the peak rather than the current use.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top returned to the OS only beyond 1 GiB
MMAP_THRESHOLD = 1 << 28  # blocks below 256 MiB come from the heap, where freed ones are reused


def keep_freed_memory() -> bool:
    """Raise glibc malloc's trim and mmap thresholds for this process; False where malloc is not glibc's."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
