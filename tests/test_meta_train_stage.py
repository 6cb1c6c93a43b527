"""Stage meta_train: the profile's seeds batched or one at a time give the same run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from stages import meta_train

pytestmark = pytest.mark.usefixtures("one_thread")
SETTING, METHOD = "hopper-size", "mcat"


def run_stage(params: Path, root: Path, batch_seeds: bool) -> None:
    raw = OmegaConf.load(params)
    raw.budgets.smoke.seeds = 2
    raw.budgets.smoke.meta_steps = 600
    raw.budgets.smoke.meta_start_steps = 100
    raw.budgets.smoke.meta_retrain_every = 200
    raw.meta.batch_seeds = batch_seeds
    path = root / "params.yaml"
    root.mkdir()
    OmegaConf.save(raw, path)
    meta_train.main([SETTING, METHOD, "--params", str(path), "--root", str(root), "--no-progress"])


def read_csv(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))


def numeric_close(a: list[list[str]], b: list[list[str]]) -> None:
    assert len(a) == len(b) and a[0] == b[0]
    for x, y in zip(a[1:], b[1:], strict=True):
        for u, v in zip(x, y, strict=True):
            try:
                assert float(u) == pytest.approx(float(v), rel=1e-4, abs=1e-3), (x, y)
            except ValueError:
                assert u == v


@pytest.mark.slow
def test_seeds_one_at_a_time_match_the_batched_run(smoke_params: Path, tmp_path: Path) -> None:
    batched, single = tmp_path / "batched", tmp_path / "single"
    run_stage(smoke_params, batched, batch_seeds=True)
    run_stage(smoke_params, single, batch_seeds=False)
    reports = Path("reports/meta") / SETTING / METHOD
    for name in ("curve.csv", "embeddings.csv"):
        numeric_close(read_csv(batched / reports / name), read_csv(single / reports / name))
    curve = read_csv(single / reports / "curve.csv")
    assert {row[2] for row in curve[1:]} == {"0", "1"}
    agents = [
        torch.load(root / "data/meta" / SETTING / METHOD / "agent.pt", weights_only=True) for root in (batched, single)
    ]
    assert agents[0]["total_it"] == agents[1]["total_it"] > 0
    for net in ("actor", "critic", "actor_optimizer"):
        flat = [torch.cat([t.flatten().float() for t in torch.utils._pytree.tree_leaves(a[net]) if torch.is_tensor(t)])
                for a in agents]  # fmt: skip
        torch.testing.assert_close(flat[0], flat[1], rtol=1e-3, atol=1e-4)
    metrics = [OmegaConf.load(root / reports / "metrics.json") for root in (batched, single)]
    assert [m.batch_seeds for m in metrics] == [True, False]
    assert np.allclose(metrics[0].final_test_return.per_seed, metrics[1].final_test_return.per_seed, rtol=1e-4)
    assert not (single / ".resume").exists() or not any((single / ".resume").rglob("loop.json"))
