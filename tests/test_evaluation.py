"""Evaluation helpers: summaries over seeds and relative improvements."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation import improvement_pct, paired_improvement_pct, summarize


def test_improvement_is_relative_to_the_magnitude_of_the_reference() -> None:
    assert float(improvement_pct(150.0, 100.0)) == pytest.approx(50.0)
    assert float(improvement_pct(-50.0, -100.0)) == pytest.approx(50.0)  # less negative is better
    assert float(improvement_pct(-150.0, -100.0)) == pytest.approx(-50.0)
    np.testing.assert_allclose(improvement_pct(np.array([2.0, 1.0]), np.array([1.0, -2.0])), [100.0, 150.0])


def test_paired_improvement_is_that_of_the_seed_means_with_the_paired_standard_error() -> None:
    reference = np.array([[100.0, 2.0], [120.0, -40.0], [110.0, -50.0]])  # [seeds, pairs]; seed 0 of pair 1 near 0
    new = np.array([[130.0, -160.0], [150.0, -30.0], [120.0, -20.0]])
    pct, stderr = paired_improvement_pct(new, reference)
    np.testing.assert_allclose(pct, [100 * (400 / 3 - 110) / 110, 100 * (-70 + 88 / 3) / (88 / 3)])
    gain = new - reference
    np.testing.assert_allclose(stderr, 100 * gain.std(0, ddof=1) / np.sqrt(3) / np.abs(reference.mean(0)))
    assert abs(pct[1]) < 200 < abs(improvement_pct(new, reference)[:, 1].mean())  # per seed: seed 0 alone -8100 %
    one_seed = paired_improvement_pct(new[:1], reference[:1])
    np.testing.assert_allclose(one_seed[0], improvement_pct(new[0], reference[0]))
    assert (one_seed[1] == 0).all()


def test_summarize_gives_mean_and_standard_error_over_seeds() -> None:
    stats = summarize(np.array([1.0, 2.0, 3.0]))
    assert stats.mean == pytest.approx(2.0)
    assert stats.stderr == pytest.approx(np.std([1.0, 2.0, 3.0], ddof=1) / np.sqrt(3))


class ConstantActionEnv:
    """Stands in for an env: 5-step episodes, reward 1, reward parts forward 2 and ctrl -1 per step."""

    def __init__(self) -> None:
        import gymnasium

        self.action_space = gymnasium.spaces.Box(-2.0, 2.0, (4,), np.float32)
        self.steps = 0

    def reset(self, seed: int | None = None):
        self.steps = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.steps += 1
        return np.zeros(3, np.float32), 1.0, False, self.steps == 5, {"reward_forward": 2.0, "reward_ctrl": -1.0}


def test_evaluation_reports_the_share_of_actions_at_the_bounds_and_the_reward_parts() -> None:
    """Two of four components at a bound (2.0 and -1.99, within 1% of the half-range 2), none in the second env."""
    from pipeline.evaluation import evaluate_policies

    actions = np.array([[2.0, -1.99, 0.5, 0.0], [1.9, 0.0, 0.0, -1.5]], np.float32)
    stats = evaluate_policies(lambda obs: actions, [ConstantActionEnv(), ConstantActionEnv()], 3, [0, 10])
    assert [s.at_bounds for s in stats] == [0.5, 0.0]
    assert stats[0].mean == 5.0 and dict(stats[0].reward_parts) == {"forward": 10.0, "ctrl": -5.0}
