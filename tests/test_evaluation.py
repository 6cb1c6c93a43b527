"""Evaluation helpers: summaries over seeds and relative improvements."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation import improvement_pct, summarize


def test_improvement_is_relative_to_the_magnitude_of_the_reference() -> None:
    assert float(improvement_pct(150.0, 100.0)) == pytest.approx(50.0)
    assert float(improvement_pct(-50.0, -100.0)) == pytest.approx(50.0)  # less negative is better
    assert float(improvement_pct(-150.0, -100.0)) == pytest.approx(-50.0)
    np.testing.assert_allclose(improvement_pct(np.array([2.0, 1.0]), np.array([1.0, -2.0])), [100.0, 150.0])


def test_summarize_gives_mean_and_standard_error_over_seeds() -> None:
    stats = summarize(np.array([1.0, 2.0, 3.0]))
    assert stats.mean == pytest.approx(2.0)
    assert stats.stderr == pytest.approx(np.std([1.0, 2.0, 3.0], ddof=1) / np.sqrt(3))
