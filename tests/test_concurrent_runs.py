"""Two runs in one workspace: the second `dvc repro` is refused while the first holds DVC's lock.

Two stages never write one resume folder: each folder is named after its stage and run, and a process holds
an fcntl lock on it while it runs (tests/test_resume_folder.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_a_second_dvc_repro_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", work)
    raw = OmegaConf.load(ROOT / "params.yaml")
    raw.profile = "smoke"
    OmegaConf.save(raw, work / "params.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {"DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1"}
    dvc = [sys.executable, "-m", "dvc"]
    assert subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=work, env=env).returncode == 0
    first = subprocess.Popen([*dvc, "repro"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (work / "reports" / "params_checked.txt").exists():  # the first run is past its start
            assert first.poll() is None and time.monotonic() < deadline, "the first run ended or never started"
            time.sleep(0.2)
        second = subprocess.run([*dvc, "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        message = second.stdout + second.stderr
        # DVC's read-write lock on the outputs: which output is busy, and the process that holds it
        assert "is busy, it is being blocked by" in message and str(first.pid) in message, message
        assert first.poll() is None  # the first goes on
    finally:
        first.kill()
        first.wait()
