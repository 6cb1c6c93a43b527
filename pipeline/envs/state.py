"""The complete state of a running env built by `make_env`, to resume a training run bitwise.

Four parts: MuJoCo's integration state (`mj_getState` with mjSTATE_INTEGRATION: time, qpos,
qvel, act, warm-start accelerations, controls, applied forces, ...); the body positions, a derived
quantity that Ant's step reads before stepping (MuJoCo leaves them at the previous step's
pre-integration values, which no recomputation reproduces, so they are stored); the generators
of the env (reset noise) and of its action space (random actions); and the plain scalar
attributes of every wrapper layer (TimeLimit's step count, DelayedReward's pending sum, the
order checks). Arrays are float64 numpy arrays; everything else is JSON-compatible.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import gymnasium
import mujoco
import numpy as np

_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
_ARRAYS = ("physics", "body_positions")  # the float64 array parts of a state


def _layers(env: gymnasium.Env) -> list[gymnasium.Env]:
    layers = [env]
    while isinstance(layers[-1], gymnasium.Wrapper):
        layers.append(layers[-1].env)
    return layers


def _scalars(obj: Any) -> dict[str, Any]:
    return {
        k: v
        for k, v in vars(obj).items()
        if v is None or (isinstance(v, (bool, numbers.Number, str)) and not isinstance(v, np.ndarray))
    }


def get_env_state(env: gymnasium.Env) -> dict[str, Any]:
    base = env.unwrapped
    physics = np.empty(mujoco.mj_stateSize(base.model, _STATE_SPEC))
    mujoco.mj_getState(base.model, base.data, physics, _STATE_SPEC)
    return {
        "physics": physics,
        "body_positions": base.data.xpos.copy(),
        "env_rng": base.np_random.bit_generator.state,
        "action_space_rng": env.action_space.np_random.bit_generator.state,
        "layers": [[type(layer).__name__, _scalars(layer)] for layer in _layers(env)[:-1]],
    }


def set_env_state(env: gymnasium.Env, state: dict[str, Any]) -> None:
    """Restore `get_env_state`'s result into an env built the same way (same setting, task and wrappers)."""
    layers = _layers(env)[:-1]
    names = [type(layer).__name__ for layer in layers]
    saved = [name for name, _ in state["layers"]]
    if names != saved:
        raise ValueError(f"env state is for wrappers {saved}, this env has {names}")
    base = env.unwrapped
    physics = np.asarray(state["physics"], dtype=np.float64)
    if physics.shape != (mujoco.mj_stateSize(base.model, _STATE_SPEC),):
        raise ValueError(f"env state has {physics.shape[0]} physics values, this model needs a different size")
    mujoco.mj_setState(base.model, base.data, physics, _STATE_SPEC)
    base.data.xpos[:] = np.asarray(state["body_positions"], dtype=np.float64).reshape(base.data.xpos.shape)
    base.np_random.bit_generator.state = state["env_rng"]
    env.action_space.np_random.bit_generator.state = state["action_space_rng"]
    for layer, (_, scalars) in zip(layers, state["layers"], strict=True):
        for key, value in scalars.items():
            setattr(layer, key, value)


def get_env_states(envs: Sequence[gymnasium.Env]) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Several envs' states as (JSON-compatible parts, arrays stacked over the envs) for npz + JSON files."""
    states = [get_env_state(env) for env in envs]
    arrays = {key: np.stack([s.pop(key) for s in states]) for key in _ARRAYS}
    return states, arrays


def set_env_states(
    envs: Sequence[gymnasium.Env], parts: Sequence[dict[str, Any]], arrays: dict[str, np.ndarray]
) -> None:
    """Restore what `get_env_states` returned."""
    for n, (env, part) in enumerate(zip(envs, parts, strict=True)):
        set_env_state(env, {**part, **{key: arrays[key][n] for key in _ARRAYS}})
