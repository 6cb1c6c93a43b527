"""keep_freed_memory: TD3 updates stop page-faulting (measured in fresh processes: the setting is global)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's"
)


def probe(*flags: str) -> dict:
    command = [sys.executable, "-m", "benchmarks.allocator_probe", "--seeds", "1", "--buffer", "1000",
               "--block-s", "0.05", "--blocks", "2", *flags]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.splitlines()[-1])


def test_kept_freed_memory_removes_the_page_faults_of_updates() -> None:
    default, kept = probe(), probe("--keep-freed-memory")
    assert not default["applied"] and kept["applied"]
    assert default["page_faults_per_update"] > 20  # ~130 here: each update's temporaries mapped anew
    assert kept["page_faults_per_update"] < default["page_faults_per_update"] / 5
