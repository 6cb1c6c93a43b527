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
    assert sorted(buffer.reward[0].tolist()) == [2.0, 3.0, 4.0]


def test_sampling_is_seeded_and_in_range() -> None:
    def draws(seed: int) -> torch.Tensor:
        buffer = ReplayBuffer(1, 1, capacity=10, seed=seed)
        for i in range(4):
            buffer.add(np.array([i]), np.array([0.0]), float(i), np.array([i]), False)
        return buffer.sample(64).reward[0]

    assert torch.equal(draws(0), draws(0))
    assert not torch.equal(draws(0), draws(1))
    assert set(draws(0).tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_seeds_sample_independently_with_their_own_generator() -> None:
    batched = ReplayBuffer(1, 1, capacity=10, seed=3, n_seeds=2)
    single = ReplayBuffer(1, 1, capacity=10, seed=4)
    for i in range(6):
        batched.add(np.array([[i], [10 + i]]), np.zeros((2, 1)), np.array([i, 10 + i]), np.zeros((2, 1)), [False, True])
        single.add(np.array([10 + i]), np.zeros(1), 10 + i, np.zeros(1), True)
    both, alone = batched.sample(32), single.sample(32)
    assert both.reward.shape == (2, 32)
    assert torch.equal(both.reward[1], alone.reward[0])  # seed 1 of base 3 is the 1-seed buffer of seed 4
    assert set(both.reward[0].tolist()) <= set(range(6)) and both.not_done[1].eq(0).all()


def test_a_sampled_row_is_one_stored_transition_of_its_own_seed() -> None:
    seeds, capacity, filled = 3, 10, 7  # part-filled: seed k's rows start at k x capacity, not k x size
    buffer = ReplayBuffer(2, 1, capacity=capacity, n_seeds=seeds)
    code = 100 * np.arange(seeds)[:, None]  # row i of seed k holds k * 100 + i in every field
    for i in range(filled):
        row = code + i
        buffer.add(np.hstack([row, -row]), row, row[:, 0], np.hstack([row, row]), row[:, 0] % 2 == 1)
    batch = buffer.sample(64)
    stored = batch.action[..., 0]  # [K, B]
    assert batch.obs.shape == (seeds, 64, 2) and batch.reward.shape == (seeds, 64)
    assert torch.equal(stored // 100, torch.arange(seeds)[:, None].expand(seeds, 64))
    assert ((stored % 100) < filled).all()
    assert torch.equal(batch.obs, torch.stack([stored, -stored], -1))
    assert torch.equal(batch.next_obs, torch.stack([stored, stored], -1))
    assert torch.equal(batch.reward, stored) and torch.equal(batch.not_done, 1.0 - stored % 2)
    assert all(t.is_contiguous() for t in batch[:5])


def test_empty_buffer_cannot_sample() -> None:
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(1, 1, capacity=2).sample(1)
