"""Per-task ring buffers of K seeds x T tasks, sampled task by task (PEARL's replay and encoder buffers).

Each (seed, task) stream has its own write position and size, so a buffer can take rows of some streams
only (the encoder buffer keeps prior-z episodes' transitions alone). `sample` draws `batch` rows of every
task for every seed, uniformly among the stream's rows, from seed k's own generator.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

_STORED = ("obs", "action", "reward", "next_obs", "not_done")


class TaskBatch(NamedTuple):
    obs: torch.Tensor  # [K, T, B, obs]
    action: torch.Tensor  # [K, T, B, action]
    reward: torch.Tensor  # [K, T, B] as the agent saw it (delayed)
    next_obs: torch.Tensor  # [K, T, B, obs]
    not_done: torch.Tensor  # [K, T, B]: 0 where the episode terminated (a time limit is not terminal)


class TaskBuffers:
    def __init__(self, n_seeds: int, n_tasks: int, capacity: int, obs_dim: int, action_dim: int):
        if min(n_seeds, n_tasks, capacity, obs_dim, action_dim) < 1:
            raise ValueError("seeds, tasks, capacity and dims must be >= 1")
        self.capacity = capacity
        shape = (n_seeds, n_tasks, capacity)
        self.obs, self.next_obs = torch.zeros(*shape, obs_dim), torch.zeros(*shape, obs_dim)
        self.action = torch.zeros(*shape, action_dim)
        self.reward, self.not_done = torch.zeros(shape), torch.zeros(shape)
        self.size = np.zeros((n_seeds, n_tasks), np.int64)
        self.next = np.zeros((n_seeds, n_tasks), np.int64)

    def add(self, where: np.ndarray, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:  # fmt: skip
        """One row for each stream where `where` [K, T] is true; the arrays are [K, T, ...]."""
        for k, i in zip(*np.nonzero(where), strict=True):
            row = self.next[k, i]
            self.obs[k, i, row] = torch.from_numpy(np.asarray(obs[k, i], np.float32))
            self.action[k, i, row] = torch.from_numpy(np.asarray(action[k, i], np.float32))
            self.next_obs[k, i, row] = torch.from_numpy(np.asarray(next_obs[k, i], np.float32))
            self.reward[k, i, row] = float(reward[k, i])
            self.not_done[k, i, row] = 0.0 if terminated[k, i] else 1.0
            self.next[k, i] = (row + 1) % self.capacity
            self.size[k, i] = min(self.size[k, i] + 1, self.capacity)

    def sample(self, batch: int, generators: list[torch.Generator]) -> TaskBatch:
        """`batch` rows of every stream, [K, T, batch, ...]; every stream must hold a row."""
        if (self.size == 0).any():
            raise ValueError("cannot sample: a stream of this buffer is empty")
        n_tasks = self.size.shape[1]
        size = torch.from_numpy(self.size)
        rows = torch.stack([(torch.rand(n_tasks, batch, generator=g) * size[k, :, None]).long()
                            for k, g in enumerate(generators)])  # fmt: skip
        seed = torch.arange(len(generators))[:, None, None]
        task = torch.arange(n_tasks)[None, :, None]
        return TaskBatch(*(getattr(self, name)[seed, task, rows] for name in _STORED))

    def sample_stream(self, seed: int, task: int, batch: int, generator: torch.Generator) -> TaskBatch:
        """`batch` rows of one stream, [1, 1, batch, ...] (a seed's own draw: other seeds' streams untouched)."""
        if self.size[seed, task] == 0:
            raise ValueError(f"cannot sample: stream (seed {seed}, task {task}) of this buffer is empty")
        rows = (torch.rand(batch, generator=generator) * int(self.size[seed, task])).long()
        return TaskBatch(*(getattr(self, name)[seed, task, rows][None, None] for name in _STORED))

    def state_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The filled rows (up to the largest stream's size) and every stream's position."""
        filled = int(self.size.max())
        arrays = {f"{prefix}{name}": getattr(self, name)[:, :, :filled].numpy() for name in _STORED}
        return arrays | {f"{prefix}size": self.size, f"{prefix}next": self.next}

    def load_state_arrays(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        if arrays[f"{prefix}size"].shape != self.size.shape or arrays[f"{prefix}obs"].shape[2] > self.capacity:
            raise ValueError(f"buffer state '{prefix}' of {arrays[f'{prefix}obs'].shape} does not fit this buffer")
        filled = arrays[f"{prefix}obs"].shape[2]
        for name in _STORED:
            getattr(self, name)[:, :, :filled] = torch.from_numpy(arrays[f"{prefix}{name}"])
        self.size, self.next = arrays[f"{prefix}size"].copy(), arrays[f"{prefix}next"].copy()
