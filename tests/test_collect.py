"""Collecting transition datasets: row layout, episodes, determinism, action noise, dense rewards.

Two halfcheetah-armature tasks with 30-step episodes and 70 steps per task: every task has two
whole episodes and a last one cut at 10 steps (HalfCheetah never terminates).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import pytest

from pipeline.data.collect import collect_transitions
from pipeline.data.dataset import DatasetInfo, Transitions, read_dataset, write_dataset
from pipeline.envs import make_env

SETTING = "halfcheetah-armature"
TASKS = (0.1, 0.5)
EPISODE = 30
STEPS = 70
LENGTHS = [30, 30, 10]  # per task: two whole episodes, then the cut one
OBS, ACT = 17, 6
NOISE = 0.3
SEED = 3

W = np.random.default_rng(0).normal(0.0, 0.03, (OBS, ACT))


def linear_policy(scale: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """Deterministic batch policy obs [T, 17] -> scale * tanh(obs W) [T, 6]; scale > 1 leaves the bounds."""

    def policy(obs: np.ndarray) -> np.ndarray:
        assert obs.ndim == 2 and obs.shape[1] == OBS
        return scale * np.tanh(obs.astype(np.float64) @ W)

    return policy


def make_envs(delay: int = 0, tasks: tuple[float, ...] = TASKS) -> list[gymnasium.Env]:
    return [make_env(SETTING, task, delay=delay, max_episode_steps=EPISODE) for task in tasks]


def collect(
    envs: list[gymnasium.Env] | None = None,
    *,
    noise: float = NOISE,
    seed: int = SEED,
    scale: float = 1.0,
) -> Transitions:
    envs = make_envs() if envs is None else envs
    return collect_transitions(envs, linear_policy(scale), steps_per_task=STEPS, action_noise=noise, seed=seed)


@pytest.fixture(scope="module")
def data() -> Transitions:
    return collect()


def dataset_info(transitions: Transitions, env: gymnasium.Env) -> DatasetInfo:
    """The info stage collect writes beside the transitions."""
    space = env.action_space
    return DatasetInfo(
        setting=SETTING,
        tasks=dict(enumerate(TASKS)),
        observation_shape=list(env.observation_space.shape),
        action_shape=list(space.shape),
        action_low=space.low.tolist(),
        action_high=space.high.tolist(),
        policy_checkpoint_sha256=None,
        seed=SEED,
        num_transitions=len(transitions.index),
        num_episodes=int(transitions.episode_index[-1]) + 1,
        extra={"action_noise": NOISE},
    )


def assert_same(a: Transitions, b: Transitions) -> None:
    for name in Transitions._fields:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def episode_lengths(t: Transitions, task: int) -> list[int]:
    return np.unique(t.episode_index[t.task_index == task], return_counts=True)[1].tolist()


def test_each_task_has_exactly_steps_per_task_rows_in_task_order(data: Transitions) -> None:
    n = len(TASKS) * STEPS
    for name in Transitions._fields:
        assert len(getattr(data, name)) == n, name
    np.testing.assert_array_equal(data.index, np.arange(n))
    np.testing.assert_array_equal(data.task_index, np.repeat(np.arange(len(TASKS)), STEPS))
    assert data.observation.shape == data.next_observation.shape == (n, OBS)
    assert data.action.shape == (n, ACT)


def test_result_is_a_valid_dataset_that_reads_back_identical(data: Transitions, tmp_path: Path) -> None:
    env = make_envs()[0]
    info = dataset_info(data, env)
    write_dataset(tmp_path / "ds", data, info)
    read, read_info = read_dataset(tmp_path / "ds", setting=SETTING)
    assert_same(read, data)
    assert read_info == info


def test_episodes_have_the_time_limit_length_except_the_cut_last_one(data: Transitions) -> None:
    for task in range(len(TASKS)):
        assert episode_lengths(data, task) == LENGTHS
    # episodes numbered 0, 1, ... across tasks in row order; frames count from 0 in each episode
    np.testing.assert_array_equal(data.episode_index, np.repeat(np.arange(2 * len(LENGTHS)), LENGTHS * 2))
    np.testing.assert_array_equal(data.frame_index, np.concatenate([np.arange(n) for n in LENGTHS * 2]))


def test_only_episode_ends_are_flagged_and_each_task_ends_truncated(data: Transitions) -> None:
    ends = np.cumsum(LENGTHS * 2) - 1
    flagged = np.zeros(len(data.index), bool)
    flagged[ends] = True
    np.testing.assert_array_equal(data.truncated, flagged)
    assert not data.terminated.any()  # HalfCheetah has no terminal states
    last_rows = np.arange(1, len(TASKS) + 1) * STEPS - 1
    assert data.truncated[last_rows].all()


def test_next_observation_is_the_following_observation_within_an_episode(data: Transitions) -> None:
    same = data.episode_index[1:] == data.episode_index[:-1]
    np.testing.assert_array_equal(data.next_observation[:-1][same], data.observation[1:][same])
    # a new episode starts from a reset, not from where the last one ended
    assert (data.next_observation[:-1][~same] != data.observation[1:][~same]).any(axis=1).all()


def test_same_seed_gives_identical_data_whatever_the_envs_did_before(data: Transitions) -> None:
    envs = make_envs()
    collect(envs, seed=SEED + 1)  # leave the envs mid-episode with other RNG states
    assert_same(collect(envs), data)


def test_another_seed_gives_other_data(data: Transitions) -> None:
    other = collect(seed=SEED + 1)
    assert not np.array_equal(other.observation[0], data.observation[0])  # another reset
    assert not np.isclose(other.action, data.action).all(axis=1).any()


def test_a_task_rows_do_not_depend_on_the_other_tasks(data: Transitions) -> None:
    alone = collect(make_envs(tasks=TASKS[:1]))
    first = data.task_index == 0
    for name in ("observation", "action", "next_observation", "reward", "truncated"):
        np.testing.assert_array_equal(getattr(alone, name), getattr(data, name)[first], err_msg=name)


def test_without_noise_actions_are_the_policy_actions_clipped() -> None:
    scale = 4.0  # many raw actions fall outside [-1, 1]
    t = collect(noise=0.0, scale=scale)
    expected = np.clip(linear_policy(scale)(t.observation), -1.0, 1.0).astype(np.float32)
    np.testing.assert_array_equal(t.action, expected)
    assert (np.abs(t.action) == 1.0).mean() > 0.1  # clipping did happen


def test_noisy_actions_stay_in_bounds_and_differ_by_the_configured_std(data: Transitions) -> None:
    assert data.action.dtype == np.float32
    assert data.action.min() >= -1.0 and data.action.max() <= 1.0
    diff = data.action - linear_policy()(data.observation)
    inside = np.abs(data.action) < 1.0  # not clipped: the plain noise, std NOISE x half the range (1)
    assert inside.mean() > 0.8
    assert (np.abs(diff[inside]) > 1e-6).mean() > 0.99
    assert diff[inside].std() == pytest.approx(NOISE, rel=0.15)
    assert abs(diff[inside].mean()) < 0.05


def test_noise_is_clipped_to_the_bounds() -> None:
    t = collect(noise=2.0)
    assert t.action.min() == -1.0 and t.action.max() == 1.0


def test_delayed_envs_still_give_dense_rewards(data: Transitions) -> None:
    delayed = collect(make_envs(delay=7))
    assert_same(delayed, data)
    # replay task 0's actions in a fresh delayed env: the stored rewards are its info["dense_reward"]
    env = make_envs(delay=7)[0]
    env.reset(seed=SEED)
    dense, emitted = [], []
    for row in np.flatnonzero(data.task_index == 0):
        _, reward, terminated, truncated, info = env.step(data.action[row])
        dense.append(info["dense_reward"])
        emitted.append(reward)
        if terminated or truncated:
            env.reset()
    dense, emitted = np.array(dense), np.array(emitted)
    np.testing.assert_allclose(data.reward[: len(dense)], dense, rtol=1e-6, atol=1e-6)
    assert (emitted == 0).mean() > 0.5  # the env itself emits mostly zeros
    whole = slice(0, sum(LENGTHS[:2]))  # complete episodes: the delayed sums flush at the time limit
    episodes = data.episode_index[whole]
    np.testing.assert_allclose(
        np.bincount(episodes, weights=data.reward[whole]), np.bincount(episodes, weights=emitted[whole]), rtol=1e-5
    )


def test_rejects_no_steps() -> None:
    with pytest.raises(ValueError, match="steps_per_task"):
        collect_transitions(make_envs(), linear_policy(), steps_per_task=0, action_noise=0.1, seed=0)
