"""The paper's five task families, registered as settings: one MuJoCo robot, dynamics varied by one parameter.

`make_env` builds a task of any registered setting (pipeline.envs.registry); these five are its first entries.

Observation and action spaces and the reward function are the same for every task of a family;
only the physics changes. Each family has two task definitions (`DEFINITIONS`):

- `paper`: the authors' envs, behind the paper's numbers (docs/settings.md): HalfCheetah as
  Gymnasium v5; Ant rewarded forward velocity + 0.05 per step (- 0.005 |a|^2 for ant-damping, no
  control cost for ant-cripple), no contact cost; Hopper forward velocity + 1 - 0.001 |a|^2; no env
  ever terminates early; halfcheetah-mass scales body masses only; hopper-size changes the capsule
  radii only.
- `gymnasium_v5`: the stock Gymnasium v5 reward and termination (Ant +1 per healthy step, -0.5
  |a|^2, contact cost; Ant and Hopper end when unhealthy); halfcheetah-mass scales masses and
  inertias; hopper-size scales the whole body.
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
from pipeline.envs.registry import (
    SETTINGS,
    Task,
    check_definition,
    check_task,
    default_label,
    get_setting,
    register_setting,
)

# Ant-v5 leg -> actuator indices (actuator order in ant.xml: hip_4, ankle_4, hip_1, ankle_1,
# hip_2, ankle_2, hip_3, ankle_3), numbered as in the authors' ant_cripple_env.
ANT_LEG_ACTUATORS = {0: (2, 3), 1: (4, 5), 2: (6, 7), 3: (0, 1)}
# CaDM's ant-damping pattern (docs/settings.md), applied to the dof indices as written. Ant-v5's dofs: 0-5 the
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
    """The authors': body masses only (inertias stay, so the bodies' mass distribution changes)."""
    model.body_mass[:] = model.body_mass * scale
    _recompute_constants(model)


def _scale_mass_and_inertia(model: mujoco.MjModel, scale: float) -> None:
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


DEFINITIONS = ("paper", "gymnasium_v5")
NEVER_UNHEALTHY = (-math.inf, math.inf)
# the authors' Ant: forward velocity + 0.05 per step, no contact cost, never ends early, 27-dim observation
_PAPER_ANT = {
    "healthy_reward": 0.05,
    "contact_cost_weight": 0.0,
    "terminate_when_unhealthy": False,
    "healthy_z_range": NEVER_UNHEALTHY,  # so the 0.05 comes every step, as the authors' constant
    "include_cfrc_ext_in_observation": False,
}
# the authors' Hopper: forward velocity + 1 - 0.001 |a|^2 (v5's weights) every step, never ends early
_PAPER_HOPPER = {
    "terminate_when_unhealthy": False,
    "healthy_state_range": NEVER_UNHEALTHY,
    "healthy_z_range": NEVER_UNHEALTHY,
    "healthy_angle_range": NEVER_UNHEALTHY,
}


@dataclass(frozen=True)
class Definition:
    """How one task definition builds a task from a stock Gymnasium v5 env: the env's kwargs and
    the physics change `apply(model, task)`, or an `env_class(task, **kwargs)` that builds its own model."""

    apply: Callable[[mujoco.MjModel, Any], None] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    env_class: Callable[..., gymnasium.Env] | None = None


@dataclass(frozen=True)
class TaskFamily:
    """One setting of a stock Gymnasium MuJoCo env (a `registry.Setting`): its task check and its task
    definitions (keys of DEFINITIONS), each a way to build a task from the stock env."""

    base_env_id: str
    check: Callable[[Task], None]
    how: dict[str, Definition]

    @property
    def definitions(self) -> tuple[str, ...]:
        return tuple(self.how)

    def check_task(self, task: Task) -> None:
        self.check(task)

    def definition(self, name: str) -> Definition:
        if name not in self.how:
            raise ValueError(f"unknown task definition {name!r}; allowed: {', '.join(self.how)}")
        return self.how[name]

    def build(self, task: Task, definition: str, **kwargs: Any) -> gymnasium.Env:
        how = self.definition(definition)
        if how.env_class is not None:
            return how.env_class(task, **how.kwargs, **kwargs)
        stock_class = load_env_creator(gymnasium.spec(self.base_env_id).entry_point)
        env = stock_class(**how.kwargs, **kwargs)
        if how.apply is not None:
            how.apply(env.model, task)
        return env

    def label(self, task: Task) -> str:
        return default_label(task)


def _same_definitions(definition: Definition) -> dict[str, Definition]:
    return dict.fromkeys(DEFINITIONS, definition)


FAMILIES: dict[str, TaskFamily] = {
    "halfcheetah-armature": TaskFamily(
        "HalfCheetah-v5",
        _positive_scalar("halfcheetah-armature task (armature)"),
        _same_definitions(Definition(_set_armature)),  # the authors' HalfCheetah is v5's
    ),
    "halfcheetah-mass": TaskFamily(
        "HalfCheetah-v5",
        _positive_scalar("halfcheetah-mass task (mass scale)"),
        {"paper": Definition(_scale_mass), "gymnasium_v5": Definition(_scale_mass_and_inertia)},
    ),
    "ant-damping": TaskFamily(
        "Ant-v5",
        _positive_scalar("ant-damping task (damping scale)"),
        {
            "paper": Definition(_scale_ant_damping, {**_PAPER_ANT, "ctrl_cost_weight": 0.005}),
            "gymnasium_v5": Definition(_scale_ant_damping, {"include_cfrc_ext_in_observation": False}),
        },
    ),
    "ant-cripple": TaskFamily(
        "Ant-v5",
        _check_leg,
        {
            "paper": Definition(_cripple_ant_leg, {**_PAPER_ANT, "ctrl_cost_weight": 0.0}),
            "gymnasium_v5": Definition(_cripple_ant_leg, {"include_cfrc_ext_in_observation": False}),
        },
    ),
    "hopper-size": TaskFamily(
        "Hopper-v5",
        _positive_scalar("hopper-size task (torso radius)"),
        {
            "paper": Definition(
                kwargs={**_PAPER_HOPPER, "scaling": "radius_only"}, env_class=hopper_size.HopperSizeEnv
            ),
            "gymnasium_v5": Definition(kwargs={"scaling": "whole_body"}, env_class=hopper_size.HopperSizeEnv),
        },
    ),
}


for _name, _family in FAMILIES.items():
    register_setting(_name, _family)


def env_id(setting: str) -> str:
    """The Gymnasium id under which each setting is registered, e.g. `mcat/ant-cripple-v0`."""
    get_setting(setting)
    return f"mcat/{setting}-v0"


def build_task_env(setting: str, task: Task, definition: str = "paper", **kwargs: Any) -> gymnasium.Env:
    """Entry point of the registered ids: the unwrapped env of one task."""
    chosen = get_setting(setting)
    chosen.check_task(task)
    check_definition(setting, definition)
    return chosen.build(task, definition, **kwargs)


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


def make_raw_env(setting: str, *, definition: str = "paper", max_episode_steps: int | None = None) -> gymnasium.Env:
    """The stock Gymnasium env a setting is built on (the definition's kwargs), for benchmarks and baselines.

    hopper-size builds its own model, so its raw env is the stock Hopper-v5."""
    family = get_setting(setting)
    if not isinstance(family, TaskFamily):
        raise ValueError(f"setting {setting!r} is not built on a stock Gymnasium env: it has no raw env")
    how = family.definition(definition)
    kwargs = {} if how.env_class is not None else how.kwargs
    return gymnasium.make(family.base_env_id, max_episode_steps=max_episode_steps, **kwargs)


def make_env(
    setting: str,
    task: Task,
    *,
    delay: int = 0,
    max_episode_steps: int | None = None,
    definition: str = "paper",
) -> gymnasium.Env:
    """Build the task `task` of the registered setting `setting`, with rewards delayed by `delay` steps
    (0 or 1: dense).

    For the paper's five families `task` is the setting's physics parameter: the armature value,
    the mass scale, the damping scale, the crippled leg index (0-3) or None, or the hopper's torso
    radius; another setting's tasks may be names or records (pipeline.envs.registry).
    `definition` picks the reward, termination and physics change: the authors' (`paper`, the
    default) or Gymnasium v5's (`gymnasium_v5`); see DEFINITIONS.
    Episodes are truncated at `max_episode_steps` (default 1000, as the stock envs).
    `info["dense_reward"]` always holds the dense reward of the step.
    """
    check_task(setting, task)
    check_definition(setting, definition)
    register_settings()
    env = gymnasium.make(env_id(setting), task=task, definition=definition, max_episode_steps=max_episode_steps)
    return DelayedReward(env, delay)
