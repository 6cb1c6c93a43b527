"""The delayed-reward wrapper: emitted rewards sum to the dense ones over every episode."""

from dataclasses import dataclass

import gymnasium
import numpy as np
import pytest

from pipeline.envs import DelayedReward, make_env

EPISODE_STEPS = 60
DELAYS = [0, 1, 7, 20, 60, 100]  # 7 does not divide 60; 20 and 60 do; 100 exceeds it
N_EPISODES = 4

# (setting, task, task definition): HalfCheetah never terminates, so its episodes end by the time limit;
# Gymnasium v5's Hopper falls within a few dozen steps under random actions and ends (the authors' never ends).
CASES = {
    "truncated": ("halfcheetah-armature", 0.5, "paper"),
    "terminated": ("hopper-size", 0.05, "gymnasium_v5"),
}


@dataclass
class Episode:
    rewards: np.ndarray
    dense: np.ndarray
    terminated: bool
    truncated: bool


def run_episode(env, rng, seed=None, max_steps=None):
    """Random actions from `rng` until the episode ends (or after `max_steps` steps)."""
    env.reset(seed=seed)
    rewards, dense = [], []
    terminated = truncated = False
    while not (terminated or truncated or len(rewards) == max_steps):
        action = rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(env.action_space.dtype)
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        dense.append(info["dense_reward"])
    return Episode(np.array(rewards), np.array(dense), terminated, truncated)


def run_episodes(setting, task, definition, delay, seed=0):
    env = make_env(setting, task, delay=delay, max_episode_steps=EPISODE_STEPS, definition=definition)
    rng = np.random.default_rng(seed)
    return [run_episode(env, rng, seed=seed + i) for i in range(N_EPISODES)]


def emission_steps(n_steps, delay):
    """1-based steps of an n-step episode at which the wrapper may emit a nonzero reward."""
    if delay <= 1:
        return set(range(1, n_steps + 1))
    return set(range(delay, n_steps + 1, delay)) | {n_steps}


def expected_emitted(dense, delay):
    """Reference: the dense rewards summed over each window ending at an emission step."""
    emitted = np.zeros_like(dense)
    start = 0
    for step in sorted(emission_steps(len(dense), delay)):
        emitted[step - 1] = dense[start:step].sum()
        start = step
    return emitted


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request):
    return CASES[request.param]


@pytest.fixture(scope="module")
def undelayed(case):
    """Episodes of the env with dense rewards (delay 0), as reference."""
    return run_episodes(*case, delay=0)


@pytest.fixture(scope="module", params=DELAYS, ids=lambda d: f"delay{d}")
def delayed(request, case):
    return request.param, run_episodes(*case, delay=request.param)


def test_cases_end_as_intended(case, undelayed):
    if case == CASES["terminated"]:
        assert any(ep.terminated for ep in undelayed)
    else:
        assert all(ep.truncated and len(ep.rewards) == EPISODE_STEPS for ep in undelayed)


def test_emitted_rewards_sum_to_dense_rewards(delayed):
    _, episodes = delayed
    for ep in episodes:
        assert ep.rewards.sum() == pytest.approx(ep.dense.sum(), rel=1e-9)


def test_dense_rewards_are_those_of_the_undelayed_env(delayed, undelayed):
    _, episodes = delayed
    assert [len(ep.dense) for ep in episodes] == [len(ep.rewards) for ep in undelayed]
    for ep, ref in zip(episodes, undelayed, strict=True):
        assert np.array_equal(ep.dense, ref.rewards)
        assert ep.dense.sum() == pytest.approx(ref.rewards.sum(), rel=1e-9)
        assert (ep.terminated, ep.truncated) == (ref.terminated, ref.truncated)


def test_rewards_emitted_only_at_multiples_of_delay_or_final_step(delayed):
    delay, episodes = delayed
    for ep in episodes:
        nonzero = {int(i) + 1 for i in np.flatnonzero(ep.rewards)}
        assert nonzero == emission_steps(len(ep.rewards), delay)
        np.testing.assert_allclose(ep.rewards, expected_emitted(ep.dense, delay), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("partial_steps", [5, 25])
def test_pending_sum_restarts_after_reset(case, partial_steps):
    delay = 7
    setting, task, definition = case
    env = make_env(setting, task, delay=delay, max_episode_steps=EPISODE_STEPS, definition=definition)
    rng = np.random.default_rng(1)
    run_episode(env, rng, seed=1, max_steps=partial_steps)  # leaves a pending sum behind
    ep = run_episode(env, rng, seed=2)
    assert ep.rewards.sum() == pytest.approx(ep.dense.sum(), rel=1e-9)
    np.testing.assert_allclose(ep.rewards, expected_emitted(ep.dense, delay), rtol=1e-9, atol=1e-12)


# --- unit tests on a deterministic fake env -----------------------------------------------


class CountingEnv(gymnasium.Env):
    """Reward k at the k-th step of an episode, which ends (terminated or truncated) at step `length`."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float64)
    action_space = gymnasium.spaces.Discrete(1)

    def __init__(self, length=10, end="terminated"):
        self.length = length
        self.end = end
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        return (
            np.array([float(self.t)]),
            float(self.t),
            done and self.end == "terminated",
            done and self.end == "truncated",
            {},
        )


def emitted_rewards(env, n_steps):
    rewards = []
    for _ in range(n_steps):
        _, reward, terminated, truncated, info = env.step(0)
        assert info["dense_reward"] == float(env.unwrapped.t)
        rewards.append(reward)
    return rewards, terminated, truncated


@pytest.mark.parametrize("end", ["terminated", "truncated"])
def test_fake_env_delay_3(end):
    env = DelayedReward(CountingEnv(10, end), 3)
    env.reset()
    rewards, terminated, truncated = emitted_rewards(env, 10)
    assert rewards == [0, 0, 6, 0, 0, 15, 0, 0, 24, 10]
    assert (terminated, truncated) == (end == "terminated", end == "truncated")


@pytest.mark.parametrize("delay", [0, 1])
def test_fake_env_dense_delays(delay):
    env = DelayedReward(CountingEnv(5), delay)
    env.reset()
    assert emitted_rewards(env, 5)[0] == [1, 2, 3, 4, 5]


def test_fake_env_reset_drops_pending_sum():
    env = DelayedReward(CountingEnv(10), 3)
    env.reset()
    emitted_rewards(env, 4)  # 1+2+3 emitted, 4 pending
    env.reset()
    assert emitted_rewards(env, 10)[0] == [0, 0, 6, 0, 0, 15, 0, 0, 24, 10]


def test_fake_env_delay_longer_than_episode():
    env = DelayedReward(CountingEnv(4), 10)
    env.reset()
    assert emitted_rewards(env, 4)[0] == [0, 0, 0, 10]


# --- invalid delays ---------------------------------------------------------------------


@pytest.mark.parametrize("delay", [-1, 2.5, True, "3", None])
def test_invalid_delay_is_rejected(delay):
    with pytest.raises(ValueError, match="delay"):
        DelayedReward(CountingEnv(), delay)
    with pytest.raises(ValueError, match="delay"):
        make_env("halfcheetah-armature", 0.1, delay=delay)
