"""Per-task replay of meta-training: layout, sampling, next contexts and the export to the fits."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.methods.mcat.task_replay import TaskReplay

K, T, OBS, ACT, HIST = 2, 3, 4, 2, 3


def filled(capacity: int, steps: int, episode_length: int) -> TaskReplay:
    """Streams whose obs at step t is t (+ 100 x seed + 10 x task), actions t / 10, episodes of fixed length."""
    replay = TaskReplay(OBS, ACT, T, capacity, HIST, seed=0, n_seeds=K)
    base = 100 * np.arange(K)[:, None, None] + 10 * np.arange(T)[None, :, None]
    for t in range(steps):
        obs = np.broadcast_to(base + t, (K, T, OBS)).astype(np.float32)
        action = np.full((K, T, ACT), t / 10, np.float32)
        episode = np.full((K, T), t // episode_length)
        replay.add(obs, action, np.full((K, T), t), obs + 1, np.zeros((K, T), bool), episode)
    return replay


def test_samples_rows_of_their_own_seed_and_task_with_the_next_segment() -> None:
    replay = filled(capacity=50, steps=20, episode_length=7)
    batch = replay.sample(64)
    assert batch.obs.shape == (K, 64, OBS) and batch.history.shape == (K, 64, HIST, OBS + ACT)
    t = batch.reward  # reward t of step t
    expected_obs = 100 * torch.arange(K)[:, None] + 10 * batch.task + t
    assert torch.equal(batch.obs[..., 0], expected_obs.float())
    assert torch.equal(batch.next_history[:, :, :-1], batch.history[:, :, 1:])
    step = torch.cat([batch.next_obs - batch.obs, batch.action], -1)
    assert torch.equal(batch.next_history[:, :, -1], step)


def test_segments_hold_the_episode_steps_before_each_row_and_zeros_before_it() -> None:
    for steps in (20, 23):  # the ring not full / wrapped (rows 13..22 kept: row 13's predecessors are gone)
        replay = filled(capacity=10 if steps == 23 else 50, steps=steps, episode_length=7)
        batch = replay.sample(200)
        t = batch.reward.long()  # row of step t
        back = torch.arange(HIST, 0, -1)  # oldest first
        before = t[..., None] - back
        first_kept = steps - replay.size
        valid = (before >= (t // 7 * 7)[..., None]) & (before >= first_kept)  # same episode, still stored
        expected_action = torch.where(valid, before / 10, torch.zeros(()))
        assert torch.allclose(batch.history[..., -1], expected_action.float())  # the action column
        assert torch.equal(batch.history[..., 0], valid.float())  # Δs = 1 where a step exists, else 0


def test_sampling_is_deterministic_per_seed() -> None:
    a, b = filled(50, 20, 7).sample(32), filled(50, 20, 7).sample(32)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_task_data_orders_rows_oldest_first_and_marks_episodes() -> None:
    replay = filled(capacity=10, steps=23, episode_length=7)  # the ring holds steps 13..22
    data = replay.task_data(1, 2)
    assert data.states[:, 0].tolist() == [100 + 20 + t for t in range(13, 23)]
    # episodes: steps 13 (last of episode 1), 14-20 (episode 2), 21-22 (episode 3, still running)
    assert data.frame.tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert data.steps_left.tolist() == [1, 7, 6, 5, 4, 3, 2, 1, 2, 1]
    assert torch.allclose(data.deltas, torch.ones_like(data.deltas))


def flatten_encoders(scale: float = 1.0) -> list:
    """Exact 'encoders': z = scale x the flattened segment, so cached z can be compared bit for bit."""
    return [lambda segments, k=k: scale * (k + 1) * segments.flatten(-2) for k in range(K)]


def assert_every_valid_row_is_fresh(replay: TaskReplay) -> None:
    """Every cached z (and next z) equals encoding the row's current segment (next segment) now."""
    scale = torch.arange(1, K + 1, dtype=torch.float32)[:, None, None]
    task, row = torch.meshgrid(torch.arange(T), torch.arange(replay.size), indexing="ij")
    index = (torch.arange(K)[:, None], task.reshape(1, -1).expand(K, -1), row.reshape(1, -1).expand(K, -1))
    for cache, segments in ((replay.contexts, replay._segments), (replay.next_contexts, replay._next_segments)):
        valid = cache.valid[index]
        fresh = scale * segments(*index).flatten(-2)
        assert torch.equal(cache.z[index][valid], fresh[valid])


def test_encoded_samples_equal_encoding_the_sampled_segments_afresh() -> None:
    for capacity, steps in ((50, 20), (10, 23), (10, 37)):  # ring not full / wrapped once / more
        for encode_on_add in (False, True):
            cached = TaskReplay(OBS, ACT, T, capacity, HIST, seed=0, n_seeds=K, z_dim=HIST * (OBS + ACT))
            plain = filled(capacity, 0, 7)
            base = 100 * np.arange(K)[:, None, None] + 10 * np.arange(T)[None, :, None]
            for t in range(steps):  # as `filled`, with lookups between the adds to exercise invalidation
                obs = np.broadcast_to(base + t, (K, T, OBS)).astype(np.float32)
                row = (obs, np.full((K, T, ACT), t / 10, np.float32), np.full((K, T), t), obs + 1,
                       np.zeros((K, T), bool), np.full((K, T), t // 7))  # fmt: skip
                cached.add(*row, flatten_encoders() if encode_on_add else None)
                plain.add(*row)
                if t % 3 == 2:
                    cached.sample_encoded(16, flatten_encoders())
                    plain.sample(16)
                assert_every_valid_row_is_fresh(cached)
            encoded, fresh = cached.sample_encoded(64, flatten_encoders()), plain.sample(64)
            scale = torch.arange(1, K + 1, dtype=torch.float32)[:, None, None]
            assert torch.equal(encoded.obs, fresh.obs) and torch.equal(encoded.task, fresh.task)
            assert torch.equal(encoded.z, scale * fresh.history.flatten(-2))
            assert torch.equal(encoded.next_z, scale * fresh.next_history.flatten(-2))


def test_refresh_re_encodes_every_row_with_the_new_encoders() -> None:
    replay = TaskReplay(OBS, ACT, T, 10, HIST, seed=0, n_seeds=K, z_dim=HIST * (OBS + ACT))
    reference = filled(10, 23, 7)
    for name in ("obs", "next_obs", "action", "reward", "not_done", "episode"):
        getattr(replay, name).copy_(getattr(reference, name))
    replay.size, replay._next = reference.size, reference._next
    replay.sample_encoded(64, flatten_encoders())  # caches the old encoders' z
    reference.sample(64)  # keeps the two generators in step
    replay.refresh_contexts(flatten_encoders(scale=-2.0))
    assert replay.contexts.valid.all() and replay.next_contexts.valid.all()
    encoded, fresh = replay.sample_encoded(64, flatten_encoders()), reference.sample(64)
    scale = -2.0 * torch.arange(1, K + 1, dtype=torch.float32)[:, None, None]
    assert torch.equal(encoded.z, scale * fresh.history.flatten(-2))
    assert torch.equal(encoded.next_z, scale * fresh.next_history.flatten(-2))
