"""The TD3 loop: K seeds in one run give the curves of K single-seed runs."""

from __future__ import annotations

import numpy as np

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.envs import make_env
from pipeline.training import EvalPoint, train_td3

SETTING, TASK = "halfcheetah-mass", 1.25
CONFIG = TD3Config(hidden=32, batch_size=32)


def run(seed: int, n_seeds: int) -> list[list[EvalPoint]]:
    envs = [make_env(SETTING, TASK, max_episode_steps=50) for _ in range(n_seeds)]
    eval_envs = [make_env(SETTING, TASK, max_episode_steps=50) for _ in range(n_seeds)]
    space = envs[0].action_space
    agent = TD3(17, 6, space.low, space.high, CONFIG, seed=seed, n_seeds=n_seeds)
    return train_td3(
        agent, envs, eval_envs, steps=160, start_steps=60, eval_every=80, eval_episodes=2, seed=seed, progress=False
    )


def test_batched_seeds_reproduce_single_seed_curves() -> None:
    batched = run(seed=3, n_seeds=2)
    assert [p.env_steps for p in batched[0]] == [0, 80, 160]
    for k in range(2):
        single = run(seed=3 + k, n_seeds=1)[0]
        np.testing.assert_allclose(
            [p.mean_return for p in batched[k]], [p.mean_return for p in single], rtol=1e-4, atol=1e-4
        )
    assert batched[0] != batched[1]
