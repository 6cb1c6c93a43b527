"""An env's state captured mid-episode and restored into a fresh env continues bitwise identically."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.envs import SETTINGS, make_env
from pipeline.envs.state import get_env_state, set_env_state

TASKS = {
    "halfcheetah-armature": 0.3,
    "halfcheetah-mass": 1.25,
    "ant-damping": 1.4,
    "ant-cripple": 2,
    "hopper-size": 0.0425,
}


def rollout(env, steps: int) -> list[tuple]:
    """Random actions from the env's action space; resets (unseeded) when an episode ends."""
    trace = []
    for _ in range(steps):
        action = env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action.tobytes(), obs.tobytes(), reward, terminated, truncated, info["dense_reward"]))
        if terminated or truncated:
            trace.append(("reset", env.reset()[0].tobytes()))
    return trace


@pytest.mark.parametrize("setting", SETTINGS)
def test_restored_env_continues_identically(setting: str) -> None:
    env = make_env(setting, TASKS[setting], delay=7, max_episode_steps=40)
    env.reset(seed=3)
    env.action_space.seed(4)
    rollout(env, 25)
    state = get_env_state(env)
    expected = rollout(env, 60)  # crosses the time limit: the reset draws from the env's generator

    fresh = make_env(setting, TASKS[setting], delay=7, max_episode_steps=40)
    fresh.reset(seed=99)
    fresh.action_space.seed(98)
    set_env_state(fresh, state)
    assert rollout(fresh, 60) == expected


def test_state_of_another_setting_is_refused() -> None:
    cheetah = make_env("halfcheetah-armature", 0.1)
    cheetah.reset(seed=0)
    hopper = make_env("hopper-size", 0.05)
    hopper.reset(seed=0)
    with pytest.raises(ValueError, match="physics values"):
        set_env_state(hopper, get_env_state(cheetah))


def test_state_arrays_are_float64_and_the_rest_plain_values() -> None:
    env = make_env("ant-cripple", 1, delay=5)
    env.reset(seed=0)
    state = get_env_state(env)
    assert state["physics"].dtype == np.float64
    assert all(isinstance(name, str) and isinstance(values, dict) for name, values in state["layers"])
    assert any(name == "DelayedReward" and "_pending" in values for name, values in state["layers"])
