"""The TD3 loop: K seeds in one run give the curves of K single-seed runs."""

from __future__ import annotations

import gymnasium
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


class Recorder(gymnasium.Wrapper):
    """Keeps the actions stepped and the joint positions each reset drew."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self.actions: list[np.ndarray] = []
        self.reset_qpos: list[np.ndarray] = []

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.reset_qpos.append(self.env.unwrapped.data.qpos.copy())
        return out

    def step(self, action):
        self.actions.append(np.array(action))
        return self.env.step(action)


def test_random_actions_and_evaluations_draw_their_own_streams() -> None:
    """Seeding actions with the reset seed made the first random action the reset noise shifted by one;
    evaluation resets `seed + k + episode` gave member k + 1 member k's next start."""
    envs = [Recorder(make_env(SETTING, TASK, max_episode_steps=50)) for _ in range(2)]
    eval_envs = [Recorder(make_env(SETTING, TASK, max_episode_steps=50)) for _ in range(2)]
    space = envs[0].action_space
    agent = TD3(17, 6, space.low, space.high, CONFIG, seed=3, n_seeds=2)
    train_td3(agent, envs, eval_envs, steps=20, start_steps=20, eval_every=20, eval_episodes=2, seed=3, progress=False)
    for env in envs:  # both as U(0, 1) draws: qpos = init + U(-0.1, 0.1), action = U(low, high)
        reset_draws = (env.reset_qpos[0] - env.unwrapped.init_qpos + 0.1) / 0.2
        action_draws = np.concatenate([(a - space.low) / (space.high - space.low) for a in env.actions[:3]])
        assert not np.isclose(reset_draws[:, None], action_draws[None, :], rtol=0, atol=1e-6).any()
    starts = [qpos for env in eval_envs for qpos in env.reset_qpos]
    assert len(starts) == 8  # 2 members x 2 evaluations x 2 episodes
    assert len({qpos.tobytes() for qpos in starts[:2] + starts[4:6]}) == 4  # first evaluation: 4 distinct starts
