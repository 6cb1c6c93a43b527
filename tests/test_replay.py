"""Replay buffer: ring overwrite, seeded sampling, empty-buffer error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.data.replay import ReplayBuffer


def test_ring_buffer_overwrites_oldest() -> None:
    buffer = ReplayBuffer(1, 1, capacity=3)
    for i in range(5):
        buffer.add(np.array([i]), np.array([0.0]), float(i), np.array([i + 1]), False)
    assert buffer.size == 3
    assert sorted(buffer.reward.tolist()) == [2.0, 3.0, 4.0]


def test_sampling_is_seeded_and_in_range() -> None:
    def draws(seed: int) -> torch.Tensor:
        buffer = ReplayBuffer(1, 1, capacity=10, seed=seed)
        for i in range(4):
            buffer.add(np.array([i]), np.array([0.0]), float(i), np.array([i]), False)
        return buffer.sample(64).reward

    assert torch.equal(draws(0), draws(0))
    assert not torch.equal(draws(0), draws(1))
    assert set(draws(0).tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_empty_buffer_cannot_sample() -> None:
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(1, 1, capacity=2).sample(1)
