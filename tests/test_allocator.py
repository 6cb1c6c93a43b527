"""keep_freed_memory: freed heap blocks stay in the process (measured in fresh processes: the setting is global).

The test drives glibc's malloc directly with a block above its largest dynamic mmap threshold (32 MiB), which
the default thresholds always map and unmap, so every reuse page-faults on every page, deterministically. How
many page faults TD3 updates take with the defaults depends on the heap layout glibc's dynamic threshold
happens to settle on (0 to ~130 per update in fresh processes on one machine), so that is `make bench`'s to
measure, not a test's.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK_BYTES = 64 << 20
PAGES_IN_BLOCK = BLOCK_BYTES // os.sysconf("SC_PAGE_SIZE")

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's"
)

CYCLES = """
import ctypes, resource, sys
from pipeline.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "kept" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def cycle():
    block = libc.malloc({size})
    ctypes.memset(block, 1, {size})
    libc.free(block)
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    cycle()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
"""


def page_faults_per_cycle(mode: str) -> tuple[bool, float]:
    script = CYCLES.format(size=BLOCK_BYTES)
    done = subprocess.run([sys.executable, "-c", script, mode], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    applied, faults = done.stdout.split()
    return applied == "True", float(faults)


@glibc_only
def test_kept_freed_memory_reuses_freed_blocks_without_page_faults() -> None:
    default_applied, default_faults = page_faults_per_cycle("default")
    kept_applied, kept_faults = page_faults_per_cycle("kept")
    assert not default_applied and kept_applied
    assert default_faults >= PAGES_IN_BLOCK / 2  # mapped anew, zero-filled on first touch, each cycle
    assert kept_faults < 16  # the freed block is reused in place
