"""Policy evaluation: dense episode returns of deterministic policies, K envs in lockstep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import gymnasium
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]  # obs [obs_dim] -> action [action_dim]
BatchPolicy = Callable[[np.ndarray], np.ndarray]  # obs [K, obs_dim] -> actions [K, action_dim]


class ReturnStats(NamedTuple):
    mean: float
    stderr: float  # standard error of the mean over episodes (0 for one episode)
    returns: np.ndarray


def improvement_pct(new: np.ndarray | float, reference: np.ndarray | float) -> np.ndarray:
    """(new - reference) / |reference| in %: Fig. 5's transfer gain over the source policy, Table 3's
    MCAT gain over MCAT w/o PT."""
    return 100.0 * (np.asarray(new) - reference) / np.abs(reference)


def standard_error(values: np.ndarray) -> np.ndarray:
    """Standard error of the mean over axis 0 (ddof 1): over seeds or episodes; 0 where there is one value."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return np.zeros(values.shape[1:])
    return values.std(0, ddof=1) / np.sqrt(len(values))


def paired_improvement_pct(new: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Improvement in % of the seed means (`new`, `reference`: [seeds, ...], paired by seed) and its
    standard error: that of the paired differences over |mean reference| (the reference's own noise aside).

    A mean of per-seed percentages would let one seed whose reference return is near 0 swamp the rest."""
    new, reference = np.asarray(new, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    spread = standard_error(new - reference)
    return improvement_pct(new.mean(0), reference.mean(0)), 100.0 * spread / np.abs(reference.mean(0))


def summarize(returns: np.ndarray) -> ReturnStats:
    returns = np.asarray(returns, dtype=np.float64)
    return ReturnStats(float(returns.mean()), float(standard_error(returns)), returns)


def evaluate_policies(
    policy: BatchPolicy, envs: Sequence[gymnasium.Env], episodes: int, seeds: Sequence[int]
) -> list[ReturnStats]:
    """Run `episodes` full episodes on each env k (reset seeds seeds[k], seeds[k] + 1, ...).

    All envs step in lockstep so that K policies are queried in one call; an env whose
    episode ended waits for the others. Returns are dense: `info["dense_reward"]` is used
    when the env delays rewards.
    """
    k = len(envs)
    returns = np.zeros((k, episodes))
    for ep in range(episodes):
        obs = np.stack([env.reset(seed=seeds[i] + ep)[0] for i, env in enumerate(envs)])
        running = np.ones(k, dtype=bool)
        while running.any():
            actions = policy(obs)
            for i in np.flatnonzero(running):
                obs[i], reward, terminated, truncated, info = envs[i].step(actions[i])
                returns[i, ep] += info.get("dense_reward", reward)
                running[i] = not (terminated or truncated)
    return [summarize(r) for r in returns]


def evaluate_policy(policy: Policy, env: gymnasium.Env, episodes: int, seed: int) -> ReturnStats:
    """`evaluate_policies` for one policy on one env."""
    return evaluate_policies(lambda obs: policy(obs[0])[None], [env], episodes, [seed])[0]
