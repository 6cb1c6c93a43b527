"""pipeline.resume.ResumeFolder: a damaged file of a resume state is named in one line and the run continues
from the state before it (or starts over), a resumed run says where from, and a second writer is refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_meta_mcat import trainer as meta_trainer  # tests/ is on sys.path (pytest's default import mode)
from test_resume import make_run, weights

import pipeline.resume
from pipeline.methods.mcat.resume import load_meta_state, save_meta_state
from pipeline.resume import ResumeFolder

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {"truncated": truncate, "flipped": flip}


def td3_run(folder: ResumeFolder | None, crash_after: int | None = None, steps: int = 300) -> tuple[list, list, dict]:
    """The TD3 run of tests/test_resume.py (checkpoints every 70 steps); returns (curves, updates done, weights)."""
    from pipeline.training import train_td3

    agent, envs, eval_envs = make_run()
    real_train, updates = agent.train, []

    def counted(batch):
        if crash_after is not None and len(updates) >= crash_after:
            raise KeyboardInterrupt
        updates.append(1)
        real_train(batch)

    agent.train = counted
    curves = train_td3(agent, envs, eval_envs, steps=steps, start_steps=50, eval_every=100, eval_episodes=1, seed=5,
                       progress=False, resume=folder, checkpoint_every=70)  # fmt: skip
    agent.train = real_train
    return curves, updates, weights(agent)


@pytest.fixture(scope="module")
def td3_states(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An interrupted TD3 run's resume folder (states at env steps 140 and 210 kept) and the uninterrupted result."""
    expected_curves, _, expected = td3_run(None)
    folder = tmp_path_factory.mktemp("td3") / "resume"
    with (
        ResumeFolder(folder, fingerprint="run", name="test", unit="env step") as resume,
        pytest.raises(KeyboardInterrupt),
    ):
        td3_run(resume, crash_after=190)  # at env step 240
    assert sorted(p.name for p in folder.glob("gen-*")) == ["gen-000002", "gen-000003"]
    return folder, {"curves": expected_curves, "weights": expected}


def _copy(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "resume"
    shutil.copytree(source, folder)
    return folder


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("file", ["agent.pt", "replay.npz", "loop.npz", "loop.json", "manifest.json"])
def test_a_damaged_td3_state_file_is_named_and_the_state_before_it_continues(
    td3_states: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture, file: str, damage: str
) -> None:
    source, expected = td3_states
    folder = _copy(source, tmp_path)
    DAMAGE[damage](folder / "gen-000003" / file)
    with ResumeFolder(folder, fingerprint="run", name="test", unit="env step") as resume:
        curves, updates, final = td3_run(resume)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert f"{folder / 'gen-000003' / file}" in warnings[0]
    assert "resuming from the state saved before it (env step 140)" in warnings[0]
    assert "Traceback" not in err
    assert len(updates) == 300 - 140  # continued from env step 140, not 210 and not from scratch
    assert curves == expected["curves"]
    assert all(torch.equal(final[name], expected["weights"][name]) for name in final)


def test_with_every_state_damaged_the_run_starts_over(
    td3_states: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source, expected = td3_states
    folder = _copy(source, tmp_path)
    truncate(folder / "gen-000003" / "replay.npz")
    flip(folder / "gen-000002" / "agent.pt")
    with ResumeFolder(folder, fingerprint="run", name="test", unit="env step") as resume:
        _, updates, final = td3_run(resume)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "gen-000003/replay.npz is truncated or corrupted" in warnings[0]
    assert "gen-000002/agent.pt is corrupted" in warnings[1]
    assert all("no intact resume state is left: starting over" in line for line in warnings)
    assert len(updates) == 300 - 50  # from scratch: every step after the random start
    assert all(torch.equal(final[name], expected["weights"][name]) for name in final)
    assert not list(folder.glob("gen-00000[23]")), "the damaged states are gone once the new run has saved"


def test_a_resumed_run_says_from_where_when_it_was_saved_and_what_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(pipeline.resume, "PROGRESS_EVERY_S", 0.0)  # a note after every step
    folder = tmp_path / "resume"

    def resume_folder() -> ResumeFolder:
        return ResumeFolder(folder, fingerprint="run", name="pretrain x", unit="env step", total=300, every=70)

    with resume_folder() as resume, pytest.raises(KeyboardInterrupt):
        td3_run(resume, crash_after=190)
    capsys.readouterr()
    with resume_folder() as resume:
        td3_run(resume)
    out = capsys.readouterr().out
    pattern = (
        r"pretrain x: resuming at env step 210 of 300 from the state saved \d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*"
        r"\(\d+ s ago\); the interrupted run had reached env step (\d+): (\d+) env steps redone"
    )
    found = re.search(pattern, out)
    assert found, out
    reached, redone = int(found.group(1)), int(found.group(2))
    assert 210 < reached <= 241 and redone == reached - 210  # it crashed in the update of env step 241
    (folder / pipeline.resume.PROGRESS).unlink()  # no note: the checkpoint interval bounds the redone work
    with resume_folder() as resume:
        resume.load(lambda f: None)
    assert "at most 70 env steps redone" in capsys.readouterr().out


def test_a_second_process_is_refused_naming_the_folder_and_the_pid(tmp_path: Path, smoke_params: Path) -> None:
    folder = tmp_path / ".resume" / "pretrain_source" / "hopper-size"
    with ResumeFolder(folder, fingerprint="x", name="test"):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        stage = [sys.executable, "-m", "stages.pretrain_source", "hopper-size", "--params", str(smoke_params),
                 "--root", str(tmp_path), "--no-progress"]  # fmt: skip
        done = subprocess.run(stage, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert f"error: {folder} is in use by another process (pid {os.getpid()})" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()
    ResumeFolder(folder, fingerprint="x", name="test").open()  # free again once the holder has closed it


def test_a_folder_this_process_left_open_is_taken_over(tmp_path: Path) -> None:
    """A stage's `main` that an exception ended (tests interrupt them so) leaves its folder open: the same
    process opening it again takes it over; another process is still refused."""
    stale = ResumeFolder(tmp_path, fingerprint="x", name="test")
    stale.open()
    with ResumeFolder(tmp_path, fingerprint="x", name="test") as again:
        again.save(lambda f: (f / "a.json").write_text("1"), position=1)
        probe = "import sys, pipeline.resume as r; r.ResumeFolder(sys.argv[1], fingerprint='x', name='t').open()"
        done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode != 0 and f"is in use by another process (pid {os.getpid()})" in done.stderr
    with pytest.raises(RuntimeError, match="open the resume folder"):
        stale.save(lambda f: None, position=2)


def test_a_state_of_the_layout_before_generations_is_not_continued(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "loop.json").write_text('{"version": 1, "fingerprint": "run", "step": 70}')
    (tmp_path / "agent.pt").write_bytes(b"old")
    with ResumeFolder(tmp_path, fingerprint="run", name="test") as resume:
        assert resume.load(lambda f: pytest.fail("nothing is read")) is None
        resume.save(lambda f: (f / "state.json").write_text("{}"), position=1)
    assert "another configuration or code version; starting afresh" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen-000001", "lock"]


def test_remove_deletes_the_folder_and_releases_it(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with ResumeFolder(folder, fingerprint="f", name="test") as resume:
        resume.save(lambda f: (f / "a.json").write_text("1"), position=1)
        resume.progress(1, force=True)
        resume.remove()
    assert not folder.exists()
    with ResumeFolder(folder, fingerprint="f", name="test") as resume:
        assert resume.load(lambda f: 1) is None


META_FILES = ["models.pt", "replay.npz", "sil.npz", "loop.npz", "loop.json"]


@pytest.fixture(scope="module")
def meta_states(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """An interrupted MCAT run's resume folder (states at loop steps 20 and 40) and the uninterrupted result."""

    def finish(run) -> list[float]:
        run.run(60, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False)
        return [float(p.detach().double().sum()) for _, p in run.agent.named_parameters()]

    expected = finish(meta_trainer("hopper-size", "mcat", seeds=2))
    folder = tmp_path_factory.mktemp("meta") / "resume"
    run = meta_trainer("hopper-size", "mcat", seeds=2)
    real_train = run._train

    def crash_at_step_50():
        if run.step == 50:
            raise KeyboardInterrupt
        return real_train()

    run._train = crash_at_step_50
    with (
        ResumeFolder(folder, fingerprint="f", name="meta", unit="loop step") as resume,
        pytest.raises(KeyboardInterrupt),
    ):
        run.run(60, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False,
                checkpoint=lambda: resume.save(lambda f: save_meta_state(f, run), position=run.step),
                checkpoint_every=20)  # fmt: skip
    return folder, expected, finish


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("file", META_FILES)
def test_a_damaged_meta_state_file_is_named_and_the_state_before_it_continues(
    meta_states, tmp_path: Path, capsys: pytest.CaptureFixture, file: str, damage: str
) -> None:
    source, expected, finish = meta_states
    folder = _copy(source, tmp_path)
    DAMAGE[damage](folder / "gen-000002" / file)
    fresh = meta_trainer("hopper-size", "mcat", seeds=2)
    with ResumeFolder(folder, fingerprint="f", name="meta", unit="loop step") as resume:
        resume.load(lambda f: load_meta_state(f, fresh))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(folder / "gen-000002" / file) in warnings[0]
    assert "resuming from the state saved before it (loop step 20)" in warnings[0]
    assert fresh.step == 20
    assert finish(fresh) == expected
