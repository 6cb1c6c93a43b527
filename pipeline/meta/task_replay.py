"""Per-task replay for meta-training: K seeds x T tasks of transitions, and their context segments.

Each (seed, task) pair is one env stream written in order, so consecutive rows of a stream are
consecutive env steps; `episode` numbers the stream's episodes. A sampled transition comes with
its context segment, the K_h (Δs, a) pairs before it in its episode (zeros before the episode's
start, as when acting; also for the few rows whose predecessors the ring already overwrote),
rebuilt from the neighbouring rows rather than stored (a segment is 10x a transition's size),
and with the next transition's segment: this one shifted by the step itself. Storage is
preallocated torch tensors [seeds, tasks, capacity, ...]; `task_data` exports a stream in the
layout the C/F/H fits use.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pipeline.transfer.windows import TaskData


class ContextBatch(NamedTuple):
    obs: torch.Tensor  # [K, B, obs_dim]
    action: torch.Tensor  # [K, B, action_dim]
    reward: torch.Tensor  # [K, B] as the agent saw it (delayed)
    next_obs: torch.Tensor  # [K, B, obs_dim]
    not_done: torch.Tensor  # [K, B]
    history: torch.Tensor  # [K, B, K_h, obs_dim + action_dim] (Δs, a) before the transition
    next_history: torch.Tensor  # [K, B, K_h, obs_dim + action_dim] (Δs, a) before the next one
    task: torch.Tensor  # [K, B] task index of each row


_STORED = ("obs", "next_obs", "action", "reward", "not_done", "episode")


class TaskReplay:
    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        capacity: int,
        history: int,
        *,
        seed: int = 0,
        n_seeds: int = 1,
    ):
        if min(obs_dim, action_dim, n_tasks, capacity, history, n_seeds) < 1:
            raise ValueError("dims, n_tasks, capacity, history and n_seeds must be >= 1")
        self.n_seeds, self.n_tasks, self.capacity, self.history = n_seeds, n_tasks, capacity, history
        shape = (n_seeds, n_tasks, capacity)
        self.obs = torch.zeros(*shape, obs_dim)
        self.next_obs = torch.zeros(*shape, obs_dim)
        self.action = torch.zeros(*shape, action_dim)
        self.reward = torch.zeros(shape)
        self.not_done = torch.zeros(shape)
        self.episode = torch.zeros(shape, dtype=torch.int64)
        self.size = 0  # rows per stream (all streams advance together)
        self._next = 0
        self.generators = [torch.Generator().manual_seed(seed + k) for k in range(n_seeds)]

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        episode: np.ndarray,
    ) -> None:
        """One step of every stream: arrays [K, T, ...] (episode: [K, T] episode ids)."""
        i = self._next
        for name, value in (("obs", obs), ("action", action), ("next_obs", next_obs)):
            getattr(self, name)[:, :, i] = torch.as_tensor(np.asarray(value, dtype=np.float32))
        self.reward[:, :, i] = torch.as_tensor(np.asarray(reward, dtype=np.float32))
        self.not_done[:, :, i] = 1.0 - torch.as_tensor(np.asarray(terminated, dtype=np.float32))
        self.episode[:, :, i] = torch.as_tensor(np.asarray(episode, dtype=np.int64))
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The filled rows of every stream, the write position and the sampling generators (numpy arrays)."""
        arrays = {name: getattr(self, name)[:, :, : self.size].numpy() for name in _STORED}
        arrays["position"] = np.array([self._next, self.size, self.capacity], dtype=np.int64)
        arrays["generators"] = np.stack([g.get_state().numpy() for g in self.generators])
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        position, size, capacity = (int(x) for x in arrays["position"])
        if capacity != self.capacity or arrays["obs"].shape[:2] != (self.n_seeds, self.n_tasks):
            raise ValueError(f"replay state of shape {arrays['obs'].shape[:2]}, capacity {capacity} does not fit")
        for name in _STORED:
            getattr(self, name)[:, :, :size] = torch.from_numpy(arrays[name])
        self._next, self.size = position, size
        for g, state in zip(self.generators, arrays["generators"], strict=True):
            g.set_state(torch.from_numpy(state.copy()))

    def sample(self, batch_size: int) -> ContextBatch:
        """`batch_size` rows per seed, tasks and rows uniform, from each seed's own generator."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        picks = [
            (
                torch.randint(self.n_tasks, (batch_size,), generator=g),
                torch.randint(self.size, (batch_size,), generator=g),
            )
            for g in self.generators
        ]
        seed = torch.arange(self.n_seeds)[:, None]
        task = torch.stack([t for t, _ in picks])
        row = torch.stack([r for _, r in picks])
        index = (seed, task, row)
        segment = self._segments(seed, task, row)
        step = torch.cat([self.next_obs[index] - self.obs[index], self.action[index]], -1)
        next_segment = torch.cat([segment[:, :, 1:], step.unsqueeze(2)], 2)
        return ContextBatch(
            self.obs[index],
            self.action[index],
            self.reward[index],
            self.next_obs[index],
            self.not_done[index],
            segment,
            next_segment,
            task,
        )

    def _segments(self, seed: torch.Tensor, task: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        """The (Δs, a) of the K_h rows before each `row` [K, B] in its episode: [K, B, K_h, step]."""
        back = torch.arange(self.history, 0, -1)  # K_h, ..., 1 rows back, oldest first
        rows = (row[..., None] - back) % self.capacity
        age = (row[..., None] - self._next) % self.capacity  # 0 = the oldest stored row
        kept = age >= back if self.size == self.capacity else (row[..., None] - back) >= 0
        s, t = seed[..., None], task[..., None]
        same = kept & (self.episode[s, t, rows] == self.episode[seed, task, row][..., None])
        steps = torch.cat([self.next_obs[s, t, rows] - self.obs[s, t, rows], self.action[s, t, rows]], -1)
        return steps * same[..., None]

    def task_data(self, seed_index: int, task: int) -> TaskData:
        """One stream's rows, oldest first, as the C/F/H fits take them (frame and steps_left from `episode`;
        an episode cut by the ring buffer's overwrite or still running counts from its first kept row)."""
        order = (torch.arange(self.size) + (self._next if self.size == self.capacity else 0)) % self.capacity
        episode = self.episode[seed_index, task, order].numpy()
        n = len(order)
        starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
        lengths = np.diff(np.r_[starts, n])
        first = np.repeat(starts, lengths)
        frame = np.arange(n) - first
        steps_left = np.repeat(starts + lengths, lengths) - np.arange(n)
        obs = self.obs[seed_index, task, order]
        return TaskData(
            states=obs,
            actions=self.action[seed_index, task, order],
            deltas=self.next_obs[seed_index, task, order] - obs,
            frame=torch.from_numpy(frame.astype(np.int64)),
            steps_left=torch.from_numpy(steps_left.astype(np.int64)),
        )
