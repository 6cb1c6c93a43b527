"""Policy evaluation: dense episode returns of a deterministic policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gymnasium
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]


class ReturnStats(NamedTuple):
    mean: float
    stderr: float  # standard error of the mean over episodes (0 for one episode)
    returns: np.ndarray


def summarize(returns: np.ndarray) -> ReturnStats:
    returns = np.asarray(returns, dtype=np.float64)
    stderr = float(returns.std(ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else 0.0
    return ReturnStats(float(returns.mean()), stderr, returns)


def evaluate_policy(policy: Policy, env: gymnasium.Env, episodes: int, seed: int) -> ReturnStats:
    """Run `episodes` full episodes (reset seeds seed, seed+1, ...); dense return of each.

    The dense reward is read from `info["dense_reward"]` when the env delays rewards.
    """
    returns = np.empty(episodes)
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            total += info.get("dense_reward", reward)
            done = terminated or truncated
        returns[ep] = total
    return summarize(returns)
