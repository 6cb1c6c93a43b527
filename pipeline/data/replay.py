"""Replay buffer in preallocated torch tensors (no per-sample numpy<->torch churn)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor  # [B, obs_dim]
    action: torch.Tensor  # [B, action_dim]
    reward: torch.Tensor  # [B]
    next_obs: torch.Tensor  # [B, obs_dim]
    not_done: torch.Tensor  # [B], 0.0 where the episode terminated (truncation is not terminal)
    context: torch.Tensor | None = None  # [B, context_dim] for context-conditioned agents
    next_context: torch.Tensor | None = None


class ReplayBuffer:
    """FIFO ring buffer of transitions; `sample` draws uniformly with its own generator."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int, *, seed: int = 0, device: str = "cpu"):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)

        def alloc(*shape: int) -> torch.Tensor:
            return torch.zeros(capacity, *shape, dtype=torch.float32, device=self.device)

        self.obs, self.next_obs = alloc(obs_dim), alloc(obs_dim)
        self.action = alloc(action_dim)
        self.reward, self.not_done = alloc(), alloc()
        self.size = 0
        self._next = 0
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self._next
        self.obs[i] = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        self.action[i] = torch.from_numpy(np.asarray(action, dtype=np.float32))
        self.next_obs[i] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
        self.reward[i] = float(reward)
        self.not_done[i] = 0.0 if terminated else 1.0
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(self.size, (batch_size,), generator=self.generator, device=self.device)
        return Batch(self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.not_done[idx])
