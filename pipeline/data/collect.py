"""Collecting transition datasets: a noisy policy per task, all tasks stepped in lockstep."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium
import numpy as np
from tqdm.auto import tqdm

from pipeline.data.dataset import Transitions
from pipeline.seeding import stream_seed

BatchPolicy = Callable[[np.ndarray], np.ndarray]  # obs [T, obs_dim] -> actions [T, action_dim], row k for task k


def collect_transitions(
    envs: Sequence[gymnasium.Env],
    policy: BatchPolicy,
    *,
    steps_per_task: int,
    action_noise: float,
    seed: int,
    progress: bool = False,
) -> Transitions:
    """`steps_per_task` transitions on each env k (task_index k) from `policy` plus Gaussian noise.

    The noise has std `action_noise` x half the action range and actions are clipped to the
    bounds: a good policy with noise is the "mediocre, noisy" data policy of paper Sec. 5.1.
    Env k is reset with seed `seed + k` first, its noise drawn from a stream named after that seed, so the
    dataset depends on nothing but the policy and the seed. The last episode of each task is
    cut at `steps_per_task` and marked truncated. Rows: task 0's episodes, then task 1's, ...;
    rewards are dense (`info["dense_reward"]` when the env delays them).
    """
    if steps_per_task < 1:
        raise ValueError(f"steps_per_task must be >= 1, got {steps_per_task}")
    k = len(envs)
    low, high = envs[0].action_space.low, envs[0].action_space.high
    noise_std = action_noise * (high - low) / 2
    rngs = [np.random.default_rng(stream_seed(seed + i, "collect_noise")) for i in range(k)]  # not env i's resets
    obs_dim, action_dim = envs[0].observation_space.shape[0], low.shape[0]
    observation = np.empty((k, steps_per_task, obs_dim), np.float32)
    next_observation = np.empty_like(observation)
    action = np.empty((k, steps_per_task, action_dim), np.float32)
    reward = np.empty((k, steps_per_task), np.float32)
    terminated = np.zeros((k, steps_per_task), bool)
    truncated = np.zeros((k, steps_per_task), bool)

    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]).astype(np.float32)
    for t in tqdm(range(steps_per_task), desc="collect", disable=not progress, unit="step", mininterval=1.0):
        noise = np.stack([rng.normal(0.0, noise_std) for rng in rngs])
        actions = np.clip(policy(obs) + noise, low, high).astype(np.float32)
        for i, env in enumerate(envs):
            next_obs, r, term, trunc, info = env.step(actions[i])
            observation[i, t], action[i, t], next_observation[i, t] = obs[i], actions[i], next_obs
            reward[i, t] = info.get("dense_reward", r)
            terminated[i, t], truncated[i, t] = term, trunc or (t == steps_per_task - 1 and not term)
            obs[i] = env.reset()[0] if term or trunc else next_obs

    ends = terminated | truncated  # [k, steps]: the last row of each episode
    starts = np.concatenate([np.ones((k, 1), bool), ends[:, :-1]], axis=1)
    episode = np.cumsum(starts.reshape(-1)) - 1  # tasks in order, episodes in order within a task
    rows = np.arange(k * steps_per_task)
    first_row = np.maximum.accumulate(np.where(starts.reshape(-1), rows, 0))
    return Transitions(
        index=rows.astype(np.int64),
        episode_index=episode.astype(np.int32),
        frame_index=(rows - first_row).astype(np.int32),
        task_index=np.repeat(np.arange(k, dtype=np.int16), steps_per_task),
        observation=observation.reshape(-1, obs_dim),
        action=action.reshape(-1, action_dim),
        next_observation=next_observation.reshape(-1, obs_dim),
        reward=reward.reshape(-1),
        terminated=terminated.reshape(-1),
        truncated=truncated.reshape(-1),
    )
