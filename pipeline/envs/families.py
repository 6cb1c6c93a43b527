"""The paper's five task families: one MuJoCo robot, dynamics varied by one parameter.

Reward function, observation and action spaces are those of the Gymnasium v5 env and are
the same for every task of a family; only the physics changes. See README "Task families"
for the values used and why.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import mujoco
from gymnasium.envs.registration import load_env_creator

from pipeline.envs import hopper_size
from pipeline.envs.delay import DelayedReward

Task = float | int | None

# Ant-v5 leg -> actuator indices (actuator order in ant.xml: hip_4, ankle_4, hip_1, ankle_1,
# hip_2, ankle_2, hip_3, ankle_3), numbered as in the authors' ant_cripple_env.
ANT_LEG_ACTUATORS = {0: (2, 3), 1: (4, 5), 2: (6, 7), 3: (0, 1)}
# CaDM's ant-damping pattern (design.md), applied to the dof indices as written. Ant-v5's dofs: 0-5 the
# free root joint (undamped: its share of the first groups changes nothing), 6-13 hip/ankle of legs 1-4.
# So leg 1's joints are damped x s and legs 2-4's x 1/s.
ANT_DAMPING_TIMES_SCALE = (slice(2, 5), slice(5, 8))
ANT_DAMPING_OVER_SCALE = (slice(8, 11), slice(11, 14))


def _positive_scalar(name: str) -> Callable[[Task], None]:
    def check(task: Task) -> None:
        if isinstance(task, bool) or not isinstance(task, numbers.Real) or not math.isfinite(task) or task <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {task!r}")

    return check


def _check_leg(task: Task) -> None:
    if task is not None and (
        isinstance(task, bool) or not isinstance(task, numbers.Integral) or task not in ANT_LEG_ACTUATORS
    ):
        raise ValueError(f"crippled leg must be one of {sorted(ANT_LEG_ACTUATORS)} or None, got {task!r}")


def _recompute_constants(model: mujoco.MjModel) -> None:
    """Refresh what MuJoCo derives from masses and armature at compile time (invweight0, ...)."""
    mujoco.mj_setConst(model, mujoco.MjData(model))


def _set_armature(model: mujoco.MjModel, armature: float) -> None:
    model.dof_armature[3:] = armature  # the 3 root dofs keep armature 0
    _recompute_constants(model)


def _scale_mass(model: mujoco.MjModel, scale: float) -> None:
    model.body_mass[:] = model.body_mass * scale
    model.body_inertia[:] = model.body_inertia * scale
    _recompute_constants(model)


def _scale_ant_damping(model: mujoco.MjModel, scale: float) -> None:
    for dofs in ANT_DAMPING_TIMES_SCALE:
        model.dof_damping[dofs] *= scale
    for dofs in ANT_DAMPING_OVER_SCALE:
        model.dof_damping[dofs] /= scale


def _cripple_ant_leg(model: mujoco.MjModel, leg: int | None) -> None:
    if leg is not None:
        model.actuator_gear[list(ANT_LEG_ACTUATORS[leg]), 0] = 0.0


@dataclass(frozen=True)
class TaskFamily:
    """How to build any task of one setting from a stock Gymnasium v5 env."""

    base_env_id: str
    check_task: Callable[[Task], None]
    apply: Callable[[mujoco.MjModel, Any], None] | None
    base_kwargs: dict[str, Any] = field(default_factory=dict)
    env_class: Callable[..., gymnasium.Env] | None = None  # built as env_class(task, **kwargs)


SETTINGS: dict[str, TaskFamily] = {
    "halfcheetah-armature": TaskFamily(
        "HalfCheetah-v5", _positive_scalar("halfcheetah-armature task (armature)"), _set_armature
    ),
    "halfcheetah-mass": TaskFamily(
        "HalfCheetah-v5", _positive_scalar("halfcheetah-mass task (mass scale)"), _scale_mass
    ),
    "ant-damping": TaskFamily(
        "Ant-v5",
        _positive_scalar("ant-damping task (damping scale)"),
        _scale_ant_damping,
        {"include_cfrc_ext_in_observation": False},
    ),
    "ant-cripple": TaskFamily("Ant-v5", _check_leg, _cripple_ant_leg, {"include_cfrc_ext_in_observation": False}),
    "hopper-size": TaskFamily(
        "Hopper-v5",
        _positive_scalar("hopper-size task (torso radius)"),
        None,
        env_class=hopper_size.HopperSizeEnv,
    ),
}


def family(setting: str) -> TaskFamily:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; allowed: {', '.join(SETTINGS)}")
    return SETTINGS[setting]


def check_task(setting: str, task: Task) -> None:
    """Raise ValueError naming the setting and the allowed values if `task` is not valid."""
    family(setting).check_task(task)


def env_id(setting: str) -> str:
    """The Gymnasium id under which each setting is registered, e.g. `mcat/ant-cripple-v0`."""
    family(setting)
    return f"mcat/{setting}-v0"


def build_task_env(setting: str, task: Task, **kwargs: Any) -> gymnasium.Env:
    """Entry point of the registered ids: the unwrapped MuJoCo env of one task."""
    fam = family(setting)
    fam.check_task(task)
    if fam.env_class is not None:
        return fam.env_class(task, **fam.base_kwargs, **kwargs)
    stock_class = load_env_creator(gymnasium.spec(fam.base_env_id).entry_point)
    env = stock_class(**fam.base_kwargs, **kwargs)
    if fam.apply is not None:
        fam.apply(env.model, task)
    return env


def register_settings() -> None:
    """Register every setting as a Gymnasium id, so `env.spec.make()` rebuilds the same task."""
    for setting in SETTINGS:
        if env_id(setting) not in gymnasium.registry:
            gymnasium.register(
                env_id(setting),
                entry_point=build_task_env,
                kwargs={"setting": setting},
                max_episode_steps=1000,
            )


def make_raw_env(setting: str, *, max_episode_steps: int | None = None) -> gymnasium.Env:
    """The stock Gymnasium env a setting is built on (same kwargs), for benchmarks and baselines."""
    fam = family(setting)
    return gymnasium.make(fam.base_env_id, max_episode_steps=max_episode_steps, **fam.base_kwargs)


def make_env(setting: str, task: Task, *, delay: int = 0, max_episode_steps: int | None = None) -> gymnasium.Env:
    """Build the task `task` of `setting`, with rewards delayed by `delay` steps (0 or 1: dense).

    `task` is the setting's physics parameter: the armature value, the mass scale, the
    damping scale, the crippled leg index (0-3) or None, or the hopper's torso radius.
    Episodes are truncated at `max_episode_steps` (default 1000, as the stock envs).
    `info["dense_reward"]` always holds the dense reward of the step.
    """
    check_task(setting, task)
    register_settings()
    env = gymnasium.make(env_id(setting), task=task, max_episode_steps=max_episode_steps)
    return DelayedReward(env, delay)
