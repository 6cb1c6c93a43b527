"""K seeds x T tasks of envs stepping in lockstep, each with its running episode's context segment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import gymnasium
import numpy as np


class Finished(NamedTuple):
    seed: int
    task: int
    received: float  # return the agent saw (the sum of the delayed rewards; equals the dense one)
    dense: float


class Streams:
    """Observations [K, T, obs], the last `history` (Δs, a) of each running episode [K, T, K_h, step]
    (zeros before the episode's start), episode ids and running returns."""

    def __init__(self, envs: Sequence[Sequence[gymnasium.Env]], history: int, reset_seeds: np.ndarray):
        self.envs = envs
        self.obs = np.stack(
            [[env.reset(seed=int(reset_seeds[k, i]))[0] for i, env in enumerate(row)] for k, row in enumerate(envs)]
        ).astype(np.float32)
        k, t, obs_dim = self.obs.shape
        action_dim = envs[0][0].action_space.shape[0]
        self.segment = np.zeros((k, t, history, obs_dim + action_dim), np.float32)
        self.episode = np.zeros((k, t), np.int64)
        self.received = np.zeros((k, t))
        self.dense = np.zeros((k, t))

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step the `active` envs; returns rewards, next observations, terminated, ended ([K, T]; zeros elsewhere)."""
        rewards = np.zeros(active.shape)
        terminated, ended = np.zeros(active.shape, bool), np.zeros(active.shape, bool)
        next_obs = self.obs.copy()
        for k, i in zip(*np.nonzero(active), strict=True):
            obs, reward, term, trunc, info = self.envs[k][i].step(actions[k, i])
            next_obs[k, i], rewards[k, i], terminated[k, i], ended[k, i] = obs, reward, term, term or trunc
            self.received[k, i] += reward
            self.dense[k, i] += info["dense_reward"]
        return rewards, next_obs, terminated, ended

    def advance(
        self, actions: np.ndarray, next_obs: np.ndarray, active: np.ndarray, ended: np.ndarray, *, reset: bool = True
    ) -> list[Finished]:
        """Append each active env's step to its segment and move on; ended episodes are reported and,
        with `reset`, restarted (new id, zero segment and returns)."""
        step = np.concatenate([next_obs - self.obs, actions], -1).astype(np.float32)
        shifted = np.concatenate([self.segment[:, :, 1:], step[:, :, None]], 2)
        self.segment = np.where(active[:, :, None, None], shifted, self.segment)
        self.obs = np.where(active[:, :, None], next_obs, self.obs).astype(np.float32)
        ended_at = list(zip(*np.nonzero(ended), strict=True))
        finished = [Finished(int(k), int(i), self.received[k, i], self.dense[k, i]) for k, i in ended_at]
        if reset:
            for k, i in ended_at:
                self.obs[k, i] = self.envs[k][i].reset()[0]
                self.segment[k, i] = 0.0
                self.episode[k, i] += 1
                self.received[k, i] = self.dense[k, i] = 0.0
        return finished
