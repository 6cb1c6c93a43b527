"""A bad value in params.yaml never deletes results, whichever way the DAG is run.

A one-setting smoke DAG is reproduced in a scratch git + DVC repo; then, with `delay: abc` in
params.yaml, `make repro`, `dvc repro`, `dvc repro -s <stage>` (which skips stage check_params) and
`dvc exp run -S delay=abc` must each fail naming `delay` and leave every file under data/ and
reports/ byte-identical (stage check_params stops the DAG first; outputs are `persist: true`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
SETTING = "halfcheetah-armature"

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {"DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)


def snapshot(work: Path) -> dict[str, str]:
    files = [p for top in ("data", "reports") for p in (work / top).rglob("*") if p.is_file()]
    return {p.relative_to(work).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch repo whose one-setting smoke DAG has run and been committed."""
    work = tmp_path_factory.mktemp("bad-params") / "repo"
    work.mkdir()
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, work)
    raw = OmegaConf.load(ROOT / "params.yaml")
    raw.profile = "smoke"
    raw.tasks = {SETTING: raw.tasks[SETTING]}
    raw.transfer = {SETTING: raw.transfer[SETTING]}
    raw.meta_train.settings, raw.meta_train.methods = [SETTING], ["mcat"]
    OmegaConf.save(raw, work / "params.yaml")
    (work / "installed.stamp").touch()
    for args in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"], ["git", "config", "user.name", "t"]):
        assert run(args, work).returncode == 0
    assert run([sys.executable, "-m", "dvc", "init", "-q"], work).returncode == 0
    result = run([sys.executable, "-m", "dvc", "repro"], work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert run(["git", "add", "-A"], work).returncode == 0
    assert run(["git", "commit", "-qm", "smoke results"], work).returncode == 0
    return work


ENTRY_POINTS = {  # make repro's install step is marked done (STAMP), so it only runs `dvc repro`
    "make repro": lambda py: ["make", "repro", "STAMP=installed.stamp"],
    "dvc repro": lambda py: [py, "-m", "dvc", "repro"],
    # forced: the stage runs although its own params did not change (as in a clone without its data)
    "dvc repro -s": lambda py: [py, "-m", "dvc", "repro", "-s", "-f", f"pretrain_source@{SETTING}"],
    "dvc exp run -S": lambda py: [py, "-m", "dvc", "exp", "run", "-S", "delay=abc"],
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_bad_param_fails_naming_it_and_keeps_every_output(populated: Path, entry: str) -> None:
    work = populated
    before = snapshot(work)
    params = work / "params.yaml"
    good = params.read_text()
    if entry != "dvc exp run -S":
        params.write_text(good.replace("delay: 500", "delay: abc"))
    try:
        result = run(ENTRY_POINTS[entry](sys.executable), work)
    finally:
        params.write_text(good)
    assert result.returncode != 0
    assert "delay" in result.stdout + result.stderr
    assert snapshot(work) == before


def test_the_issue_case_a_fresh_clone_keeps_its_committed_summaries(populated: Path, tmp_path: Path) -> None:
    """A clone has the committed reports but no data and no DVC cache, so the stage runs and fails on `delay`."""
    clone = tmp_path / "clone"
    assert run(["git", "clone", "-q", str(populated), str(clone)], tmp_path).returncode == 0
    before = snapshot(clone)
    assert f"reports/pretrain/{SETTING}/curve.csv" in before
    params = clone / "params.yaml"
    params.write_text(params.read_text().replace("delay: 500", "delay: abc"))
    result = run([sys.executable, "-m", "dvc", "repro", "-s", f"pretrain_source@{SETTING}"], clone)
    assert result.returncode != 0 and "delay" in result.stdout + result.stderr
    assert snapshot(clone) == before
