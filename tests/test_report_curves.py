"""Learning curves from curve.csv and the return read off them at a step count (Tables 3 and 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.report.curves import return_at, return_curve

HEADER = "env_steps,method,seed,task,split,dense_return,delayed_return\n"


def write_curve(path: Path, returns: dict[int, list[float]]) -> Path:
    """curve.csv with one test task and, per evaluation step, one return per seed (and a train row to skip)."""
    rows = [HEADER]
    for step, per_seed in returns.items():
        for seed, value in enumerate(per_seed):
            rows.append(f"{step},mcat,{seed},5,test,{value},{value}\n")
            rows.append(f"{step},mcat,{seed},0,train,-999,-999\n")
    path.write_text("".join(rows))
    return path


def test_return_curve_averages_seeds_of_the_test_split(tmp_path: Path) -> None:
    steps, mean, stderr = return_curve(write_curve(tmp_path / "c.csv", {0: [1.0, 3.0], 10: [4.0, 4.0]}))
    np.testing.assert_array_equal(steps, [0, 10])
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(stderr, [1.0, 0.0])


def test_return_at_reads_the_last_evaluation_at_or_before_the_step_count(tmp_path: Path) -> None:
    curve = return_curve(
        write_curve(tmp_path / "c.csv", {0: [0.0], 500_000: [5.0], 1_000_000: [10.0], 2_000_000: [20.0]})
    )
    assert return_at(curve, 1_000_000) == {"mean": 10.0, "stderr": 0.0, "env_steps": 1_000_000}
    assert return_at(curve, 999_999)["env_steps"] == 500_000
    assert return_at(curve, 5_000_000)["mean"] == 20.0  # a shorter run: its last evaluation
    with pytest.raises(ValueError, match="no evaluation at or before -1 env steps"):
        return_at(curve, -1)
