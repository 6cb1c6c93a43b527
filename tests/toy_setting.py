"""A toy setting whose tasks are names: a MuJoCo slider whose mass and damping each task sets.

What docs/adding-a-setting.md walks through: a `registry.Setting` (definitions, check_task, build, label) and
its env. `registered_setting("slider", SLIDER)` adds it for a test's duration.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import mujoco
import numpy as np

from pipeline.envs.registry import Task, default_label

XML = """
<mujoco model="slider">
  <option timestep="0.02"/>
  <worldbody>
    <body name="cart">
      <joint name="slide" type="slide" axis="1 0 0" damping="{damping}"/>
      <geom type="box" size="0.1 0.1 0.1" mass="{mass}"/>
    </body>
  </worldbody>
  <actuator><motor joint="slide" gear="1" ctrlrange="-1 1" ctrllimited="true"/></actuator>
</mujoco>
"""
TASKS = {
    "light": {"mass": 0.5, "damping": 0.1},
    "heavy": {"mass": 2.0, "damping": 0.1},
    "sticky": {"mass": 1.0, "damping": 2.0},
}


class SliderEnv(gymnasium.Env):
    """A cart on a rail pushed by a motor; reward: its velocity minus 0.1 |a|^2. Never ends early."""

    def __init__(self, task: str, render_mode: str | None = None):
        self.model = mujoco.MjModel.from_xml_string(XML.format(**TASKS[task]))
        self.data = mujoco.MjData(self.model)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.render_mode = render_mode

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.np_random.uniform(-0.1, 0.1, 1)
        mujoco.mj_forward(self.model, self.data)
        return self._obs(), {}

    def step(self, action):
        before = float(self.data.qpos[0])
        self.data.ctrl[:] = np.clip(action, -1.0, 1.0)
        for _ in range(2):
            mujoco.mj_step(self.model, self.data)
        velocity = (float(self.data.qpos[0]) - before) / (2 * self.model.opt.timestep)
        reward = velocity - 0.1 * float(np.square(action).sum())
        return self._obs(), reward, False, False, {}


class Slider:
    """`registry.Setting` of the slider tasks (names)."""

    definitions = ("paper",)

    def check_task(self, task: Task) -> None:
        if not isinstance(task, str) or task not in TASKS:
            raise ValueError(f"slider task must be one of {', '.join(TASKS)}, got {task!r}")

    def build(self, task: Task, definition: str, **kwargs: Any) -> gymnasium.Env:
        return SliderEnv(task, **kwargs)

    def label(self, task: Task) -> str:
        return default_label(task)


SLIDER = Slider()
