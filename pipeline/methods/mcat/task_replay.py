"""Per-task replay for meta-training: K seeds x T tasks of transitions, and their context segments.

Each (seed, task) pair is one env stream written in order, so consecutive rows of a stream are
consecutive env steps; `episode` numbers the stream's episodes. A sampled transition comes with
its context segment, the K_h (Δs, a) pairs before it in its episode (zeros before the episode's
start, as when acting; also for the few rows whose predecessors the ring already overwrote),
rebuilt from the neighbouring rows rather than stored (a segment is 10x a transition's size),
and with the next transition's segment: this one shifted by the step itself. Storage is
preallocated torch tensors [seeds, tasks, capacity, ...]; `task_data` exports a stream in the
layout the C/F/H fits use.

`sample_encoded` returns the segments' embeddings z instead, looked up in a `ContextCache`: each
row is encoded on its first lookup and again by `refresh_contexts` (call it whenever an
encoder changes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pipeline.methods.mcat.context_cache import ContextCache, Encoder
from pipeline.seeding import stream_generator
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


class EncodedBatch(NamedTuple):
    obs: torch.Tensor  # [K, B, obs_dim]
    action: torch.Tensor  # [K, B, action_dim]
    reward: torch.Tensor  # [K, B] as the agent saw it (delayed)
    next_obs: torch.Tensor  # [K, B, obs_dim]
    not_done: torch.Tensor  # [K, B]
    z: torch.Tensor  # [K, B, z_dim] seed k's C of the history before the transition
    next_z: torch.Tensor  # [K, B, z_dim] ... and of the history before the next one
    task: torch.Tensor  # [K, B]


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
        z_dim: int = 0,
    ):
        """`z_dim` > 0 keeps a cache of the segments' embeddings for `sample_encoded`."""
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
        self.generators = [stream_generator(seed + k, "task_replay") for k in range(n_seeds)]
        self.contexts = ContextCache(shape, z_dim) if z_dim > 0 else None
        self.next_contexts = ContextCache(shape, z_dim) if z_dim > 0 else None

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        episode: np.ndarray,
        encoders: list[Encoder] | None = None,
    ) -> None:
        """One step of every stream: arrays [K, T, ...] (episode: [K, T] episode ids). With `encoders`, the
        new rows' z are cached now (a few rows per step, cheaper than a lookup meeting them one by one)."""
        i = self._next
        for name, value in (("obs", obs), ("action", action), ("next_obs", next_obs)):
            getattr(self, name)[:, :, i] = torch.as_tensor(np.asarray(value, dtype=np.float32))
        self.reward[:, :, i] = torch.as_tensor(np.asarray(reward, dtype=np.float32))
        self.not_done[:, :, i] = 1.0 - torch.as_tensor(np.asarray(terminated, dtype=np.float32))
        self.episode[:, :, i] = torch.as_tensor(np.asarray(episode, dtype=np.int64))
        if self.contexts is not None:  # row i is new; in a full ring the next K_h rows lose a predecessor
            rows = (i + torch.arange(self.history + 1)) % self.capacity
            self.invalidate_contexts((slice(None), slice(None), rows))
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        if encoders is not None and self.contexts is not None:
            index = (torch.arange(self.n_seeds)[:, None], torch.arange(self.n_tasks).expand(self.n_seeds, -1),
                     torch.full((self.n_seeds, self.n_tasks), i))  # fmt: skip
            self.contexts.lookup(index, lambda sub: self._segments(*sub), encoders)
            self.next_contexts.lookup(index, lambda sub: self._next_segments(*sub), encoders)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The filled rows of every stream, the write position and the sampling generators (numpy arrays)."""
        arrays = {name: getattr(self, name)[:, :, : self.size].numpy() for name in _STORED}
        arrays["position"] = np.array([self._next, self.size, self.capacity], dtype=np.int64)
        arrays["generators"] = np.stack([g.get_state().numpy() for g in self.generators])
        if self.contexts is not None:
            rows = (slice(None), slice(None), slice(self.size))
            arrays |= self.contexts.state_arrays("z", rows) | self.next_contexts.state_arrays("next_z", rows)
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
        if self.contexts is not None:
            rows = (slice(None), slice(None), slice(size))
            self.contexts.load_state_arrays(arrays, "z", rows)
            self.next_contexts.load_state_arrays(arrays, "next_z", rows)

    def invalidate_contexts(self, where: tuple = ()) -> None:
        """Forget the cached z of rows `where` (all by default)."""
        self.contexts.invalidate(where)
        self.next_contexts.invalidate(where)

    def refresh_contexts(self, encoders: list[Encoder]) -> None:
        """Encode every stored row's segment and next segment anew: call it after any change of an encoder."""
        task, row = torch.meshgrid(torch.arange(self.n_tasks), torch.arange(self.size), indexing="ij")
        rows = [torch.stack([task.reshape(-1), row.reshape(-1)], -1)] * self.n_seeds
        self.contexts.refresh(rows, lambda sub: self._segments(*sub), encoders)
        self.next_contexts.refresh(rows, lambda sub: self._next_segments(*sub), encoders)

    def _pick(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(seed [K, 1], task [K, B], row [K, B]): tasks and rows uniform, from each seed's own generator."""
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
        return seed, torch.stack([t for t, _ in picks]), torch.stack([r for _, r in picks])

    def sample(self, batch_size: int) -> ContextBatch:
        """`batch_size` rows per seed, tasks and rows uniform, from each seed's own generator."""
        index = self._pick(batch_size)
        segment = self._segments(*index)
        next_segment = self._next_segments(*index, segment)
        return ContextBatch(
            self.obs[index],
            self.action[index],
            self.reward[index],
            self.next_obs[index],
            self.not_done[index],
            segment,
            next_segment,
            index[1],
        )

    def sample_encoded(self, batch_size: int, encoders: list[Encoder]) -> EncodedBatch:
        """As `sample` (the same rows for the same generator state), with z = encoders[k](segment) in place of
        the segments, cached per row."""
        if self.contexts is None:
            raise ValueError("this replay keeps no context cache: construct it with z_dim > 0")
        index = self._pick(batch_size)
        z = self.contexts.lookup(index, lambda sub: self._segments(*sub), encoders)
        next_z = self.next_contexts.lookup(index, lambda sub: self._next_segments(*sub), encoders)
        return EncodedBatch(
            self.obs[index], self.action[index], self.reward[index], self.next_obs[index], self.not_done[index],
            z, next_z, index[1],
        )  # fmt: skip

    def _next_segments(
        self, seed: torch.Tensor, task: torch.Tensor, row: torch.Tensor, segment: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The segment before the step after each `row`: its own segment shifted by the row's (Δs, a)."""
        segment = self._segments(seed, task, row) if segment is None else segment
        step = torch.cat([self.next_obs[seed, task, row] - self.obs[seed, task, row], self.action[seed, task, row]], -1)
        return torch.cat([segment[..., 1:, :], step.unsqueeze(-2)], -2)

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
