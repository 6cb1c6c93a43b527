"""pipeline.memory: estimates count the buffers params ask for; a stage that would not fit refuses first."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import memory
from pipeline.memory import PROCESS, Estimate, MiB, NotEnoughMemory
from stages import meta_train, pretrain_source


def test_a_replay_estimate_is_the_process_plus_every_row_of_every_member() -> None:
    one = memory.td3_training("pretrain_tasks x", obs_dim=17, action_dim=6, steps=1000, members=1)
    five = memory.td3_training("pretrain_tasks x", obs_dim=17, action_dim=6, steps=1000, members=5)
    assert one.parts["replay"] == 1000 * (2 * 17 + 6 + 2) * 4  # obs, next_obs, action, reward, not_done (float32)
    assert five.parts["replay"] == 5 * one.parts["replay"]
    assert five.total == PROCESS + five.parts["replay"]


def test_the_dataset_stages_grow_with_the_transitions_collected() -> None:
    small, large = (memory.collect(27, 8, steps, 4) for steps in (1000, 2000))
    assert all(large.parts[k] == 2 * small.parts[k] for k in small.parts)
    assert memory.train_translator(27, 8, 2000, 4).total > memory.train_translator(27, 8, 1000, 4).total
    assert "budgets.<profile>.collect_steps" in large.keys


def test_an_estimate_above_the_available_memory_is_refused_naming_the_params_to_lower() -> None:
    estimate = Estimate(
        "pretrain_tasks ant-cripple", {"replay": 100 * MiB}, ("budgets.<profile>.transfer_pretrain_steps",)
    )
    memory.check_fits(estimate, available=estimate.total + 1)  # fits: nothing raised
    with pytest.raises(NotEnoughMemory, match=r"pretrain_tasks ant-cripple needs about \d+ MiB .* lower budgets"):
        memory.check_fits(estimate, available=estimate.total - 1)


def test_available_memory_is_read_from_meminfo_and_unknown_without_it(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n")
    assert memory.available_bytes(meminfo) == 2 * MiB
    assert memory.available_bytes(tmp_path / "absent") is None


@pytest.mark.parametrize(
    ("stage", "key"), [("pretrain_source", "budgets.<profile>.pretrain_steps"), ("meta_train", "meta.replay_capacity")]
)
def test_a_stage_that_would_not_fit_exits_4_before_writing_anything(
    stage: str,
    key: str,
    smoke_params: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda meminfo=None: 64 * MiB)  # less than any process needs
    root = tmp_path / "root"
    root.mkdir()
    argv = ["--params", str(smoke_params), "--root", str(root), "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        if stage == "pretrain_source":
            pretrain_source.main(["hopper-size", *argv])
        else:
            meta_train.main(["halfcheetah-armature", "mcat", *argv])
    assert exit_info.value.code == 4
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "64 MiB are available" in err and f"lower {key}" in err
    assert [p for p in root.rglob("*") if p.is_file()] == []  # no output, no resume state
