"""Training windows cut from a transition dataset, one task at a time.

A window at step t of an episode holds the K (Δs, a) pairs before t (the context segment the
encoder C reads) and the M steps t..t+M-1 that F must predict from that context (paper eq. 1,
docs/algorithms/translator.md: the same z conditions every one of the M one-step predictions).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from pipeline.data.dataset import Transitions


class TaskData(NamedTuple):
    """One task's transitions as float32 tensors, rows in dataset order (episodes contiguous)."""

    states: torch.Tensor  # [N, obs_dim]
    actions: torch.Tensor  # [N, action_dim]
    deltas: torch.Tensor  # [N, obs_dim] next_observation - observation
    frame: torch.Tensor  # [N] int64 step within the episode
    steps_left: torch.Tensor  # [N] int64 steps from this one to the episode's end, this one included


def task_data(transitions: Transitions, task_index: int) -> TaskData:
    """The rows of `task_index` (whole episodes, as the dataset stores them)."""
    rows = np.flatnonzero(transitions.task_index == task_index)
    if len(rows) == 0:
        raise ValueError(f"the dataset has no transitions of task_index {task_index}")
    episode = transitions.episode_index[rows]
    ends = np.r_[np.flatnonzero(episode[1:] != episode[:-1]), len(rows) - 1]  # last row of each episode
    end_of_row = ends[np.searchsorted(ends, np.arange(len(rows)))]
    obs, next_obs = transitions.observation[rows], transitions.next_observation[rows]
    return TaskData(
        states=torch.from_numpy(obs.copy()),
        actions=torch.from_numpy(transitions.action[rows].copy()),
        deltas=torch.from_numpy(next_obs - obs),
        frame=torch.from_numpy(transitions.frame_index[rows].astype(np.int64)),
        steps_left=torch.from_numpy((end_of_row - np.arange(len(rows)) + 1).astype(np.int64)),
    )


def split_heldout(data: TaskData, share: float) -> tuple[TaskData, TaskData | None]:
    """(training rows, held-out rows): the last ceil(share x episodes) whole episodes held out, at least
    one where share > 0, never all; (data, None) when share is 0 or the task has a single episode."""
    starts = torch.nonzero(data.frame == 0).flatten()
    episodes = len(starts)
    held = min(math.ceil(share * episodes), episodes - 1)
    if share <= 0 or held < 1:
        return data, None
    cut = int(starts[episodes - held])
    return TaskData(*(t[:cut] for t in data)), TaskData(*(t[cut:] for t in data))


class Window(NamedTuple):
    context: torch.Tensor  # [B, K, obs_dim + action_dim] (Δs, a) of steps t-K..t-1, oldest first
    states: torch.Tensor  # [B, M, obs_dim] s of steps t..t+M-1
    actions: torch.Tensor  # [B, M, action_dim]
    deltas: torch.Tensor  # [B, M, obs_dim] Δs of steps t..t+M-1 (not normalized)


class Windows:
    """Every start t with K steps of history before it and M steps left in its episode."""

    def __init__(self, data: TaskData, history: int, future: int):
        if history < 1 or future < 1:
            raise ValueError(f"history and future must be >= 1, got {history} and {future}")
        self.data, self.history, self.future = data, history, future
        self.starts = torch.nonzero((data.frame >= history) & (data.steps_left >= future)).flatten()
        if len(self.starts) == 0:
            raise ValueError(f"no episode is long enough for {history} history and {future} future steps")
        self.steps = torch.cat([data.deltas, data.actions], -1)

    def at(self, starts: torch.Tensor) -> Window:
        past = starts[:, None] + torch.arange(-self.history, 0)
        ahead = starts[:, None] + torch.arange(self.future)
        d = self.data
        return Window(self.steps[past], d.states[ahead], d.actions[ahead], d.deltas[ahead])

    def sample(self, batch_size: int, generator: torch.Generator) -> Window:
        pick = torch.randint(len(self.starts), (batch_size,), generator=generator)
        return self.at(self.starts[pick])

    def contexts(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """`count` context segments [count, K, step_dim], drawn without replacement where there are enough."""
        n = len(self.starts)
        if count <= n:
            pick = torch.randperm(n, generator=generator)[:count]
        else:
            pick = torch.randint(n, (count,), generator=generator)
        return self.steps[self.starts[pick][:, None] + torch.arange(-self.history, 0)]
