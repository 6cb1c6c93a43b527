"""Transfer stages at the smoke budget: deterministic outputs, and bad inputs refused by name before any output."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from stages import collect, evaluate_transfer, pretrain_tasks, train_translator

SETTING = "halfcheetah-armature"


def run(stage, params: Path, root: Path, *extra: str) -> None:
    stage.main([SETTING, "--params", str(params), "--root", str(root), *extra])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def smoke_branch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(params, root) after pretrain_tasks, collect and train_translator at the smoke budget."""
    root = tmp_path_factory.mktemp("branch")
    raw = OmegaConf.load(Path(__file__).resolve().parents[1] / "params.yaml")
    raw.profile = "smoke"
    params = root / "params.yaml"
    OmegaConf.save(raw, params)
    run(pretrain_tasks, params, root, "--no-progress")
    run(collect, params, root, "--no-progress")
    run(train_translator, params, root, "--no-progress")
    return params, root


@pytest.mark.slow
def test_same_seed_gives_byte_identical_dataset_and_translator_checkpoint(
    smoke_branch: tuple[Path, Path], tmp_path: Path
) -> None:
    params, first = smoke_branch
    shutil.copytree(first / "data/pretrain_tasks", tmp_path / "data/pretrain_tasks")
    run(collect, params, tmp_path, "--no-progress")
    run(train_translator, params, tmp_path, "--no-progress")
    dataset = Path("data/datasets") / SETTING
    for name in ("transitions.parquet", "meta/episodes.parquet", "meta/info.json"):
        assert digest(first / dataset / name) == digest(tmp_path / dataset / name), name
    ckpt = Path("data/translators") / SETTING / "seed0.pt"
    a, b = (torch.load(root / ckpt, weights_only=True) for root in (first, tmp_path))
    for model in ("pair_forward", "pair_translator", "cycle_baseline", "encoder", "context_forward", "translator"):
        assert all(torch.equal(a[model][k], b[model][k]) for k in a[model]), model
    assert torch.equal(a["features"], b["features"])
    losses = Path("reports/transfer") / SETTING / "losses.csv"
    assert (first / losses).read_text() == (tmp_path / losses).read_text()


def test_evaluation_writes_table1_and_fig5_results(smoke_branch: tuple[Path, Path]) -> None:
    params, root = smoke_branch
    evaluate_transfer.main([SETTING, "--params", str(params), "--root", str(root)])
    metrics = json.loads((root / "reports/metrics" / f"transfer_{SETTING}.json").read_text())
    assert metrics["profile"] == "smoke" and metrics["pair"] == [0.1, 0.5]
    assert set(metrics["table1"]) == {
        "source_policy", "ours", "zhang_et_al", "ours_over_source", "ours_minus_source", "ours_minus_zhang_et_al"
    }  # fmt: skip
    for name in ("source_policy", "ours", "zhang_et_al"):  # the diagnostics that tell a bang-bang translator
        assert 0 <= metrics["table1"][name]["at_bounds"] <= 1
        assert {"forward", "ctrl"} <= set(metrics["table1"][name]["reward_parts"])
    assert metrics["task_definition"] == "paper"
    n = len(metrics["fig5"]["tasks"])
    assert len(metrics["fig5"]["improvement_pct"]) == n and len(metrics["fig5"]["improvement_pct"][0]) == n
    rows = (root / "reports/transfer" / SETTING / "returns.csv").read_text().splitlines()
    assert rows[0] == "experiment,seed,source_task,target_task,policy,mean_return"
    assert len(rows) - 1 == 3 * 1 + 2 * 1 * n * n  # smoke: 1 seed; Table 1 three policies, Fig. 5 two per pair

    # the summary's numbers are those of the rows, each in its place
    returns: dict[tuple, list[float]] = {}
    for experiment, _, source, target, policy, value in (row.split(",") for row in rows[1:]):
        returns.setdefault((experiment, float(source), float(target), policy), []).append(float(value))
    table1 = metrics["table1"]
    for name in ("source_policy", "ours", "zhang_et_al"):
        assert table1[name]["per_seed"] == returns[("table1", 0.1, 0.5, name)]
    assert table1["ours"]["per_seed"] != table1["zhang_et_al"]["per_seed"]  # two translators, two rollouts
    source_mean, ours_mean = table1["source_policy"]["mean"], table1["ours"]["mean"]
    assert table1["ours_over_source"] == (pytest.approx(ours_mean / source_mean) if source_mean > 0 else None)
    fig5, tasks = metrics["fig5"], metrics["fig5"]["tasks"]
    for j, source in enumerate(tasks):
        for i, target in enumerate(tasks):
            mean_source = np.mean(returns[("fig5", source, target, "source_policy")])
            mean_transferred = np.mean(returns[("fig5", source, target, "ours_multi_task")])
            assert fig5["source_policy_return"][j][i] == pytest.approx(mean_source)
            expected = 100 * (mean_transferred - mean_source) / abs(mean_source)
            assert fig5["improvement_pct"][j][i] == pytest.approx(expected)
    # Table 1's source policy on the target is Fig. 5's cell (source, target): same policy, task and resets
    cell = fig5["source_policy_return"][tasks.index(0.1)][tasks.index(0.5)]
    assert table1["source_policy"]["mean"] == pytest.approx(cell, rel=1e-6)


def test_bad_transfer_params_stop_before_any_output(
    smoke_params: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = OmegaConf.load(smoke_params)
    raw.transfer[SETTING].pair = [0.1, 0.9]
    OmegaConf.save(raw, smoke_params)
    with pytest.raises(SystemExit) as info:
        run(pretrain_tasks, smoke_params, tmp_path / "out", "--no-progress")
    assert info.value.code == 2
    assert f"transfer.{SETTING}.pair" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_setting_without_transfer_experiment_is_refused(smoke_params: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        collect.main(["hopper-size", "--params", str(smoke_params), "--root", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "'transfer'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_translator_training_refuses_a_dataset_of_another_setting(
    smoke_branch: tuple[Path, Path], tmp_path: Path
) -> None:
    params, root = smoke_branch
    dataset = tmp_path / "data/datasets" / SETTING
    shutil.copytree(root / "data/datasets" / SETTING, dataset)
    info_file = dataset / "meta/info.json"
    info = json.loads(info_file.read_text())
    info["setting"] = "halfcheetah-mass"
    info_file.write_text(json.dumps(info))
    with pytest.raises(SystemExit, match="field 'setting'"):
        run(train_translator, params, tmp_path, "--no-progress")
    assert not (tmp_path / "data/translators").exists()


def test_collect_refuses_policies_of_another_setting(smoke_branch: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    params, root = smoke_branch
    raw = OmegaConf.load(params)
    raw.transfer["halfcheetah-mass"] = {"tasks": [0.1, 0.2, 0.3, 0.4, 0.5], "pair": [0.1, 0.5]}
    other = tmp_path / "params.yaml"
    OmegaConf.save(raw, other)
    policies = tmp_path / "data/pretrain_tasks/halfcheetah-mass"
    shutil.copytree(root / "data/pretrain_tasks" / SETTING, policies)  # same shapes, another setting
    with pytest.raises(SystemExit):
        collect.main(["halfcheetah-mass", "--params", str(other), "--root", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert "field 'meta.setting'" in err and SETTING in err
    assert not (tmp_path / "data/datasets").exists()


def test_interrupted_translator_training_resumes_to_the_same_checkpoint(
    smoke_branch: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params, first = smoke_branch
    for name in ("data/datasets", "data/pretrain_tasks"):
        shutil.copytree(first / name, tmp_path / name)
    real = train_translator.train_cycle_translator

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process died during the third fit

    monkeypatch.setattr(train_translator, "train_cycle_translator", killed)
    with pytest.raises(KeyboardInterrupt):
        run(train_translator, params, tmp_path, "--no-progress")
    newest = max((tmp_path / ".resume/train_translator" / SETTING).glob("gen-*"))  # pipeline.resume's generations
    state = torch.load(newest / "state.pt", weights_only=True)
    assert state["done"] == 2 and not (tmp_path / "data/translators").exists()

    monkeypatch.setattr(train_translator, "train_cycle_translator", real)
    run(train_translator, params, tmp_path, "--no-progress")
    ckpt = Path("data/translators") / SETTING / "seed0.pt"
    assert (tmp_path / ckpt).read_bytes() == (first / ckpt).read_bytes()
    for name in ("losses.csv", "epoch_returns.csv"):
        report = Path("reports/transfer") / SETTING / name
        assert (tmp_path / report).read_text() == (first / report).read_text(), name
    assert not (tmp_path / ".resume/train_translator" / SETTING).exists()


def test_nan_loss_in_a_fit_stops_translator_training(
    smoke_branch: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    params, first = smoke_branch
    for name in ("data/datasets", "data/pretrain_tasks"):
        shutil.copytree(first / name, tmp_path / name)
    real = train_translator.fit_context_and_forward

    def poisoned(encoder, model, *args, **kwargs):
        with torch.no_grad():
            model.mean_head.weight.fill_(float("nan"))
        return real(encoder, model, *args, **kwargs)

    monkeypatch.setattr(train_translator, "fit_context_and_forward", poisoned)
    with pytest.raises(SystemExit) as info:
        run(train_translator, params, tmp_path, "--no-progress")
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert "non-finite forward loss" in err and "context + forward" in err and "resume state kept" in err
    newest = max((tmp_path / ".resume/train_translator" / SETTING).glob("gen-*"))
    state = torch.load(newest / "state.pt", weights_only=True)
    assert state["done"] == 3  # the three fits before the NaN are kept


def test_translator_loss_comparison_runs_on_a_finished_run(smoke_branch: tuple[Path, Path], tmp_path: Path) -> None:
    from benchmarks import translator_loss

    params, root = smoke_branch
    out = tmp_path / "losses.json"
    translator_loss.main([SETTING, "--params", str(params), "--root", str(root), "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["transferred_return"]) == {"nll", "mean_l1"}
    assert all(len(r["per_seed"]) == 1 for r in result["transferred_return"].values())  # smoke: one seed
