"""`python -m benchmarks.learning --merge`: runs of other variants combine, runs of other seeds pool."""

from __future__ import annotations

import pytest

from benchmarks.learning import merge_results

BUDGET = "HalfCheetah-v5 (armature 0.1), 100 steps, {} seeds, 5 eval episodes"


def run(variant: str, seeds: list[int] | None, finals: list[float], seconds: float = 10.0) -> dict:
    """A run's results as `main` writes them; seeds=None: a run from before the `seeds` key (seeds 0, 1, ...)."""
    part = {
        "budget": BUDGET.format(len(finals)),
        "env_steps": [0, 50, 100],
        "curves": {variant: [[0.0, f / 2, f] for f in finals]},
        "wall_seconds": {variant: seconds},
    }
    if seeds is not None:
        part["seeds"] = {variant: seeds}
    return part


def test_runs_of_one_variant_with_other_seeds_pool_in_seed_order() -> None:
    merged = merge_results([run("fp32", [3, 4], [30, 40], 5.0), run("fp32", None, [0, 10, 20], 7.5)])
    assert merged["seeds"] == {"fp32": [0, 1, 2, 3, 4]}
    assert [curve[-1] for curve in merged["curves"]["fp32"]] == [0, 10, 20, 30, 40]
    assert merged["budget"] == BUDGET.format(5)
    assert merged["wall_seconds"] == {"fp32": 12.5}


def test_runs_of_other_variants_combine() -> None:
    merged = merge_results([run("fp32", [0, 1], [1, 2]), run("bf16", [0, 1], [3, 4])])
    assert set(merged["curves"]) == {"fp32", "bf16"}
    assert merged["budget"] == BUDGET.format(2)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([run("fp32", [0, 1], [1, 2]), run("fp32", [1, 2], [3, 4])], "variant 'fp32' has seed 1 in more than one"),
        ([run("fp32", None, [1, 2]), run("fp32", [0], [3])], "variant 'fp32' has seed 0 in more than one"),
        ([run("fp32", [0, 1], [1, 2]), run("bf16", [0], [3])], "different seed counts"),
        ([run("fp32", [0], [1]), {**run("bf16", [0], [2]), "env_steps": [0, 100]}], "different 'env_steps'"),
        ([run("fp32", [0], [1]), {**run("bf16", [0], [2]), "budget": "other"}], "different 'budget'"),
    ],
    ids=["overlapping-seeds", "old-run-seeds", "seed-counts", "env-steps", "budget"],
)
def test_merge_rejects_what_cannot_pool(parts: list[dict], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge_results(parts)
