"""Policy evaluation: dense episode returns of deterministic policies, K envs in lockstep."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import gymnasium
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]  # obs [obs_dim] -> action [action_dim]
BatchPolicy = Callable[[np.ndarray], np.ndarray]  # obs [K, obs_dim] -> actions [K, action_dim]


BOUND_FRACTION = 0.99  # an action component within 1% of the half-range from its bound counts as at the bound


class ReturnStats(NamedTuple):
    mean: float
    stderr: float  # standard error of the mean over episodes (0 for one episode)
    returns: np.ndarray
    at_bounds: float = float("nan")  # share of action components at their bounds (BOUND_FRACTION), all steps
    reward_parts: Mapping[str, float] = MappingProxyType({})  # mean per episode of each info["reward_<part>"]


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


def at_bounds(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per row of `actions` [..., act], how many components sit at their bounds (within BOUND_FRACTION)."""
    unit = (np.asarray(actions) - (high + low) / 2) / ((high - low) / 2)
    return (np.abs(unit) >= BOUND_FRACTION).sum(-1)


def evaluate_policies(
    policy: BatchPolicy, envs: Sequence[gymnasium.Env], episodes: int, seeds: Sequence[int]
) -> list[ReturnStats]:
    """Run `episodes` full episodes on each env k (reset seeds seeds[k], seeds[k] + 1, ...).

    All envs step in lockstep so that K policies are queried in one call; an env whose
    episode ended waits for the others. Returns are dense: `info["dense_reward"]` is used
    when the env delays rewards. Each env's stats also say how often the policy's actions sat at
    the action bounds and how its return splits into the env's reward parts (`info["reward_*"]`):
    a bang-bang policy shows there as many components at the bounds and a large control cost.
    """
    k = len(envs)
    returns = np.zeros((k, episodes))
    saturated, steps = np.zeros(k), np.zeros(k)
    lows, highs = (np.stack([getattr(env.action_space, bound) for env in envs]) for bound in ("low", "high"))
    parts: list[dict[str, float]] = [{} for _ in range(k)]
    for ep in range(episodes):
        obs = np.stack([env.reset(seed=seeds[i] + ep)[0] for i, env in enumerate(envs)])
        running = np.ones(k, dtype=bool)
        while running.any():
            actions = policy(obs)
            saturated += np.where(running, at_bounds(actions, lows, highs), 0)
            steps += running
            for i in np.flatnonzero(running):
                obs[i], reward, terminated, truncated, info = envs[i].step(actions[i])
                returns[i, ep] += info.get("dense_reward", reward)
                for key, value in info.items():
                    if key.startswith("reward_"):
                        parts[i][key[7:]] = parts[i].get(key[7:], 0.0) + float(value)
                running[i] = not (terminated or truncated)
    return [
        summarize(r)._replace(
            at_bounds=float(saturated[i] / max(steps[i] * lows.shape[1], 1)),
            reward_parts={name: total / episodes for name, total in parts[i].items()},
        )
        for i, r in enumerate(returns)
    ]


def evaluate_policy(policy: Policy, env: gymnasium.Env, episodes: int, seed: int) -> ReturnStats:
    """`evaluate_policies` for one policy on one env."""
    return evaluate_policies(lambda obs: policy(obs[0])[None], [env], episodes, [seed])[0]
