"""MQL's replay for one seed: T task streams of transitions, each sampled with the history before it.

Each stream is written in env-step order with episode ids, so the `history` steps before a row are its
neighbours; a row's history (and its next row's, for the target) is rebuilt at sampling time from the
stored (action, reward, next observation) of the same episode, zeros before the episode's start or where
the ring has overwritten the predecessors.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

_STORED = ("obs", "action", "reward", "next_obs", "not_done", "episode")


class HistoryBatch(NamedTuple):
    obs: torch.Tensor  # [B, obs]
    action: torch.Tensor  # [B, action]
    reward: torch.Tensor  # [B] as the agent saw it (delayed)
    next_obs: torch.Tensor  # [B, obs]
    not_done: torch.Tensor  # [B]: 0 where the episode terminated
    history: torch.Tensor  # [B, H, action + 1 + obs]: the steps before the transition
    next_history: torch.Tensor  # [B, H, step]: the steps before the next transition (this one last)
    task: torch.Tensor  # [B]


class HistoryReplay:
    def __init__(self, n_tasks: int, capacity: int, obs_dim: int, action_dim: int, history: int):
        if min(n_tasks, capacity, obs_dim, action_dim, history) < 1:
            raise ValueError("tasks, capacity, dims and history must be >= 1")
        self.n_tasks, self.capacity, self.history = n_tasks, capacity, history
        shape = (n_tasks, capacity)
        self.obs, self.next_obs = torch.zeros(*shape, obs_dim), torch.zeros(*shape, obs_dim)
        self.action = torch.zeros(*shape, action_dim)
        self.reward, self.not_done = torch.zeros(shape), torch.zeros(shape)
        self.episode = torch.zeros(shape, dtype=torch.int64)
        self.size = 0  # rows per stream: every stream advances together
        self._next = 0

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, episode: np.ndarray) -> None:  # fmt: skip
        """One step of every stream: arrays [T, ...]."""
        i = self._next
        self.obs[:, i] = torch.as_tensor(np.asarray(obs, np.float32))
        self.action[:, i] = torch.as_tensor(np.asarray(action, np.float32))
        self.next_obs[:, i] = torch.as_tensor(np.asarray(next_obs, np.float32))
        self.reward[:, i] = torch.as_tensor(np.asarray(reward, np.float32))
        self.not_done[:, i] = 1.0 - torch.as_tensor(np.asarray(terminated, np.float32))
        self.episode[:, i] = torch.as_tensor(np.asarray(episode, np.int64))
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, generator: torch.Generator) -> HistoryBatch:
        """`batch` rows, tasks and rows uniform."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        task = torch.randint(self.n_tasks, (batch,), generator=generator)
        return self.rows(task, torch.randint(self.size, (batch,), generator=generator))

    def all_rows(self, task: int) -> HistoryBatch:
        """Every stored row of one stream."""
        return self.rows(torch.full((self.size,), task), torch.arange(self.size))

    def rows(self, task: torch.Tensor, row: torch.Tensor) -> HistoryBatch:
        history = self._window(task, row, 0)
        next_history = self._window(task, row, 1)
        stored = (self.obs, self.action, self.reward, self.next_obs, self.not_done)
        return HistoryBatch(*(x[task, row] for x in stored), history, next_history, task)

    def _window(self, task: torch.Tensor, row: torch.Tensor, shift: int) -> torch.Tensor:
        """The (action, reward, next obs) of rows row - H + shift .. row - 1 + shift of row's episode: [B, H, step]."""
        back = torch.arange(self.history, 0, -1) - shift  # H - shift, ..., 1 - shift rows back
        rows = (row[:, None] - back) % self.capacity
        if self.size == self.capacity:
            kept = (row[:, None] - self._next) % self.capacity >= back  # not overwritten since
        else:
            kept = row[:, None] - back >= 0
        t = task[:, None]
        same = kept & (self.episode[t, rows] == self.episode[task, row][:, None])
        steps = torch.cat([self.action[t, rows], self.reward[t, rows, None], self.next_obs[t, rows]], -1)
        return steps * same[..., None]

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name)[:, : self.size].numpy() for name in _STORED}
        return arrays | {"position": np.array([self._next, self.size, self.capacity], np.int64)}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        position, size, capacity = (int(x) for x in arrays["position"])
        if capacity != self.capacity or arrays["obs"].shape[0] != self.n_tasks:
            raise ValueError(f"replay state of {arrays['obs'].shape[0]} tasks, capacity {capacity} does not fit")
        for name in _STORED:
            getattr(self, name)[:, :size] = torch.from_numpy(arrays[name])
        self._next, self.size = position, size
