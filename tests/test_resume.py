"""Interrupted training resumes bitwise; a non-finite loss stops the run and keeps the last good state.

The resume folder itself (generations, damaged files, the lock, the resume line): tests/test_resume_folder.py."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import stages.common
from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.data.replay import Batch
from pipeline.envs import make_env
from pipeline.resume import ResumeFolder
from pipeline.training import NonFiniteError, train_td3
from stages.common import code_version, load_params_or_exit, run_fingerprint

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
SETTING = "hopper-size"  # terminates at random times: the envs are mid-episode at every checkpoint


def make_run(config: TD3Config | None = None) -> tuple[TD3, list, list]:
    envs = [make_env(SETTING, task, max_episode_steps=60) for task in (0.04, 0.06)]
    eval_envs = [make_env(SETTING, task, max_episode_steps=60) for task in (0.04, 0.06)]
    space = envs[0].action_space
    agent = TD3(11, 3, space.low, space.high, config or TD3Config(hidden=32), seed=5, n_seeds=2)
    return agent, envs, eval_envs


def train(agent: TD3, envs: list, eval_envs: list, resume: Path | None, steps: int = 300, fingerprint: str = "run"):
    folder = None if resume is None else ResumeFolder(resume, fingerprint=fingerprint, name="test", unit="env step")
    if folder is not None:
        folder.open()
    try:
        return train_td3(
            agent,
            envs,
            eval_envs,
            steps=steps,
            start_steps=50,
            eval_every=100,
            eval_episodes=1,
            seed=5,
            progress=False,
            resume=folder,
            checkpoint_every=70,
        )
    finally:
        if folder is not None:
            folder.close()


def newest(resume: Path) -> Path:
    """The newest generation folder of a resume folder."""
    return max(resume.glob("gen-*"))


def weights(agent: TD3) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in agent.named_parameters()}


@pytest.mark.parametrize("killed_mid_save", [False, True])
def test_interrupted_run_resumes_bitwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_mid_save: bool
) -> None:
    agent, envs, eval_envs = make_run()
    expected_curves = train(agent, envs, eval_envs, None)
    expected = weights(agent)

    resume = tmp_path / "resume"
    agent, envs, eval_envs = make_run()
    real_train, calls = agent.train, []

    def crash_after_190_updates(batch):
        calls.append(1)
        if len(calls) > 190:  # env step 240: after the checkpoints at 70, 140 and 210
            raise KeyboardInterrupt
        real_train(batch)

    monkeypatch.setattr(agent, "train", crash_after_190_updates)
    with pytest.raises(KeyboardInterrupt):
        train(agent, envs, eval_envs, resume)
    assert (newest(resume) / "loop.json").is_file()
    if killed_mid_save:  # a save that a kill cut short: its temp folder, never renamed into place
        partial = resume / ".gen-000009.0badc0de.tmp"
        partial.mkdir()
        (partial / "agent.pt").write_bytes(b"half")

    agent, envs, eval_envs = make_run()  # a fresh process: nothing but the resume folder survives
    real_train, updates = agent.train, []
    monkeypatch.setattr(agent, "train", lambda batch: (updates.append(1), real_train(batch)))
    curves = train(agent, envs, eval_envs, resume)
    assert len(updates) == 300 - 210  # continued from the state of env step 210, not started over
    assert curves == expected_curves
    resumed = weights(agent)
    assert all(torch.equal(resumed[name], expected[name]) for name in expected)
    assert not list(resume.glob(".gen-*.tmp")), "the cut-short save's leftovers are removed"


def test_state_of_another_configuration_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    agent, envs, eval_envs = make_run()
    train(agent, envs, eval_envs, tmp_path / "resume", steps=150)  # leaves states at 70 and 140
    fresh, envs, eval_envs = make_run()
    before = weights(fresh)
    folder = ResumeFolder(tmp_path / "resume", fingerprint="other", name="test")
    with folder:
        curves = train_td3(
            fresh, envs, eval_envs, steps=10, start_steps=50, eval_every=100, eval_episodes=1, seed=5,
            progress=False, resume=folder, checkpoint_every=70,
        )  # fmt: skip
    assert [p.env_steps for p in curves[0]] == [0, 10]  # started over
    assert all(torch.equal(before[name], p) for name, p in weights(fresh).items())  # random steps only
    assert "holds the resume state of another configuration or code version; starting afresh" in capsys.readouterr().err


def test_nan_loss_stops_the_run_naming_it_and_keeps_the_last_state(tmp_path: Path, monkeypatch) -> None:
    agent, envs, eval_envs = make_run()
    real_train = agent.train

    def nan_rewards_from_update_120(batch: Batch) -> None:
        nan = float("nan") if agent.total_it >= 119 else 1.0
        real_train(batch._replace(reward=batch.reward * nan))

    monkeypatch.setattr(agent, "train", nan_rewards_from_update_120)
    resume = tmp_path / "resume"
    with pytest.raises(
        NonFiniteError, match=r"non-finite critic loss at env step 170; last good resume state: .*resume"
    ):
        train(agent, envs, eval_envs, resume)
    state = OmegaConf.load(newest(resume) / "loop.json")
    assert state.step == 140  # the last checkpoint before the NaN, untouched
    assert all(np.isfinite(v).all() for v in np.load(newest(resume) / "replay.npz").values())


def _run_stage(module: str, args: list[str], params: Path, root: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", module, *args, "--params", str(params), "--root", str(root), "--no-progress"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def _kill_after_first_checkpoint(process: subprocess.Popen, resume: Path) -> None:
    deadline = time.monotonic() + 300
    while not list(resume.glob("gen-*/manifest.json")):
        assert process.poll() is None, "the stage ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.5))
    assert process.poll() is None, "the stage ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()


def meta_outputs(method: str, checkpoints: tuple[str, ...]) -> list[str]:
    reports = ("curve.csv", "embeddings.csv", "episodes.csv", "transfers.csv")
    return [f"data/meta/{SETTING}/{method}/{f}" for f in checkpoints] + [
        f"reports/meta/{SETTING}/{method}/{f}" for f in reports
    ]


META_OUTPUTS = meta_outputs("mcat", ("agent.pt", "models.pt"))
MQL_SMALL = {"mql.replay_updates": 5, "mql.snapshot_updates": 2}  # test-time adaptation at a smoke budget
META_BUDGET = {"budgets.smoke.meta_eval_every": 1000, "budgets.smoke.meta_retrain_every": 500}
# test id -> (stage, module args, params changes, resume folder to kill in, outputs compared byte for byte)
STAGE_RUNS = {
    "pretrain_source": (
        "pretrain_source",
        [SETTING],
        {"budgets.smoke.pretrain_steps": 1500, "budgets.smoke.checkpoint_every": 300},
        ".resume/pretrain_source/hopper-size",
        ["data/pretrain/hopper-size/td3.pt", "reports/pretrain/hopper-size/curve.csv"],
    ),
    "meta_train": (
        "meta_train",
        [SETTING, "mcat"],
        {**META_BUDGET, "budgets.smoke.meta_steps": 2500, "budgets.smoke.checkpoint_every": 500},
        ".resume/meta_train/hopper-size-mcat",
        META_OUTPUTS,
    ),
    "meta_train_pearl": (
        "meta_train",
        [SETTING, "pearl"],
        {**META_BUDGET, "budgets.smoke.meta_steps": 1500, "budgets.smoke.checkpoint_every": 500},
        ".resume/meta_train/hopper-size-pearl",
        meta_outputs("pearl", ("agent.pt", "encoder.pt")),
    ),
    "meta_train_mql": (
        "meta_train",
        [SETTING, "mql"],
        {**META_BUDGET, "budgets.smoke.meta_steps": 1500, "budgets.smoke.checkpoint_every": 500, **MQL_SMALL},
        ".resume/meta_train/hopper-size-mql",
        meta_outputs("mql", ("agents.pt",)),
    ),
    "meta_train_one_seed_at_a_time": (  # killed while seed 1 trains: seed 0's finished state is kept
        "meta_train",
        [SETTING, "mcat"],
        {
            **META_BUDGET,
            "budgets.smoke.meta_steps": 1500,
            "budgets.smoke.checkpoint_every": 500,
            "budgets.smoke.seeds": 2,
            "meta.batch_seeds": False,
        },
        ".resume/meta_train/hopper-size-mcat-seed1",
        META_OUTPUTS,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(STAGE_RUNS))
def test_sigkilled_stage_resumes_to_the_uninterrupted_result(run: str, smoke_params: Path, tmp_path: Path) -> None:
    stage, args, changes, resume, outputs = STAGE_RUNS[run]
    raw = OmegaConf.load(smoke_params)
    for key, value in changes.items():
        OmegaConf.update(raw, key, value)
    OmegaConf.save(raw, smoke_params)
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    assert _run_stage(f"stages.{stage}", args, smoke_params, plain).wait(timeout=300) == 0

    _kill_after_first_checkpoint(_run_stage(f"stages.{stage}", args, smoke_params, killed), killed / resume)
    assert not (killed / outputs[0]).exists()
    assert _run_stage(f"stages.{stage}", args, smoke_params, killed).wait(timeout=300) == 0
    for name in outputs:
        digests = [hashlib.sha256((root / name).read_bytes()).hexdigest() for root in (plain, killed)]
        assert digests[0] == digests[1], name
    assert not any((killed / ".resume").rglob("manifest.json")), "a finished stage removes its resume states"


def test_fingerprint_ignores_which_meta_runs_exist_but_not_how_a_run_runs() -> None:
    """Adding Table 4's delays keeps running stages' resume states; changing a hyperparameter does not."""
    params = load_params_or_exit(str(ROOT / "params.yaml"))
    fingerprint = run_fingerprint(params, "meta_train", SETTING, "mcat")
    more_runs = dataclasses.replace(params, meta_train=dataclasses.replace(params.meta_train, other_delays=[200]))
    assert run_fingerprint(more_runs, "meta_train", SETTING, "mcat") == fingerprint
    other_lr = dataclasses.replace(params, td3=dataclasses.replace(params.td3, lr=1e-3))
    assert run_fingerprint(other_lr, "meta_train", SETTING, "mcat") != fingerprint
    assert run_fingerprint(params, "meta_train", SETTING, "mcat_no_pt") != fingerprint


def test_code_version_follows_the_sources(tmp_path: Path) -> None:
    """Editing, adding or renaming a source file of pipeline/ or stages/ changes the version; other files do not."""
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "stages").mkdir()
    (tmp_path / "pipeline" / "a.py").write_text("x = 1\n")
    (tmp_path / "stages" / "s.py").write_text("y = 1\n")
    version = code_version(tmp_path)
    (tmp_path / "README.md").write_text("notes")
    assert code_version(tmp_path) == version
    (tmp_path / "pipeline" / "a.py").write_text("x = 2\n")
    edited = code_version(tmp_path)
    assert edited != version
    (tmp_path / "pipeline" / "a.py").rename(tmp_path / "pipeline" / "b.py")
    assert code_version(tmp_path) not in (version, edited)


def test_code_version_follows_the_versions_of_the_packages_that_compute_results(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After an upgrade of torch (or numpy, mujoco, ...) a resume state would continue in other arithmetic."""
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "a.py").write_text("x = 1\n")
    version = code_version(tmp_path)
    installed = stages.common._installed_version
    monkeypatch.setattr(stages.common, "_installed_version", lambda p: "9.9" if p == "torch" else installed(p))
    assert code_version(tmp_path) != version


def test_resume_state_of_other_code_is_not_continued(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """A state written by other code gets another fingerprint, and the stage says it starts afresh."""
    params = load_params_or_exit(str(ROOT / "params.yaml"))
    fingerprint = run_fingerprint(params, "meta_train", SETTING, "mcat")
    monkeypatch.setattr(stages.common, "code_version", lambda: "other code")
    other_code = run_fingerprint(params, "meta_train", SETTING, "mcat")
    assert other_code != fingerprint
    with ResumeFolder(tmp_path, fingerprint=fingerprint, name="test") as folder:
        folder.save(lambda f: (f / "state.json").write_text("{}"), position=7)
    with ResumeFolder(tmp_path, fingerprint=fingerprint, name="test") as folder:
        assert folder.load(lambda f: (f / "state.json").read_text()) == "{}"
    assert "another configuration" not in capsys.readouterr().err
    with ResumeFolder(tmp_path, fingerprint=other_code, name="test") as folder:
        assert folder.load(lambda f: (f / "state.json").read_text()) is None
    assert f"{tmp_path} holds the resume state of another configuration or code version" in capsys.readouterr().err
