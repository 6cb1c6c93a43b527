"""Single-task TD3 training loop (source-policy pretraining)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gymnasium
import numpy as np
from tqdm.auto import tqdm

from pipeline.agents.td3 import TD3
from pipeline.data.replay import ReplayBuffer
from pipeline.evaluation import evaluate_policy


class EvalPoint(NamedTuple):
    env_steps: int
    mean_return: float
    stderr: float


EVAL_SEED_OFFSET = 10_000  # evaluation episodes never reuse a training reset seed


def train_td3(
    agent: TD3,
    env: gymnasium.Env,
    eval_env: gymnasium.Env,
    *,
    steps: int,
    start_steps: int,
    eval_every: int,
    eval_episodes: int,
    seed: int,
    batch_size: int | None = None,
    progress: bool = True,
    on_eval: Callable[[EvalPoint], None] | None = None,
) -> list[EvalPoint]:
    """Train `agent` for `steps` env steps; evaluate at step 0, every `eval_every`, and at the end.

    The first `start_steps` actions are uniform random; after that the agent acts with
    Gaussian exploration noise (`agent.config.expl_noise` x max action) and does one update
    per env step. Everything random is drawn from generators seeded by `seed`.
    """
    batch_size = batch_size or agent.config.batch_size
    obs_dim = env.observation_space.shape[0]
    action_dim = env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high
    buffer = ReplayBuffer(obs_dim, action_dim, capacity=max(steps, 1), seed=seed, device=str(agent.device))
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    noise_std = agent.config.expl_noise * (high - low) / 2

    curve: list[EvalPoint] = []

    def evaluate(step: int) -> None:
        stats = evaluate_policy(agent.select_action, eval_env, eval_episodes, seed + EVAL_SEED_OFFSET)
        point = EvalPoint(step, stats.mean, stats.stderr)
        curve.append(point)
        if on_eval is not None:
            on_eval(point)

    evaluate(0)
    obs, _ = env.reset(seed=seed)
    bar = tqdm(total=steps, disable=not progress, unit="step", dynamic_ncols=True, mininterval=1.0)
    for step in range(1, steps + 1):
        if step <= start_steps:
            action = env.action_space.sample()
        else:
            action = agent.select_action(obs) + rng.normal(0.0, noise_std).astype(np.float32)
            action = np.clip(action, low, high)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, float(reward), next_obs, terminated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
        if step > start_steps:
            agent.train(buffer.sample(batch_size))
        if step % eval_every == 0 or step == steps:
            evaluate(step)
            bar.set_postfix(ret=f"{curve[-1].mean_return:.0f}")
        bar.update(1)
    bar.close()
    return curve


__all__ = ["EvalPoint", "train_td3"]
