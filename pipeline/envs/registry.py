"""The registry of settings: what `make_env(setting, task)` can build (docs/adding-a-setting.md).

A setting is a family of tasks sharing an observation space, an action space and a reward function; its
tasks differ in what the setting makes of a task value. Task values are what params.yaml lists under
`tasks.<setting>` and `transfer.<setting>.tasks`: a number (the paper's five MuJoCo families: a physics
parameter), None, a name (`"push-v3"`) or a record (`{"goal": "left", "mass": 1.5}`) — any JSON value, since
datasets and checkpoints record the tasks they were made for. Each setting checks its own task values.

A setting implements `Setting`; `register_setting` adds it (pipeline.envs.families registers the paper's
five). Its envs must be MuJoCo envs (gymnasium's MujocoEnv or any env with `model` and `data`), so that a
training run can save and restore their state (pipeline.envs.state).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import gymnasium

Task = Any  # a JSON value: number, None, name or record


@runtime_checkable
class Setting(Protocol):
    """One setting of tasks."""

    definitions: tuple[str, ...]  # the task definitions it has (params `task_definition`); at least "paper"

    def check_task(self, task: Task) -> None:
        """Raise ValueError naming the allowed values if `task` is not one of this setting's tasks."""
        ...

    def build(self, task: Task, definition: str, **kwargs: Any) -> gymnasium.Env:
        """The unwrapped env of `task` under `definition` (make_env adds the time limit and the delay).
        `kwargs` are gymnasium.make's for the env (e.g. render_mode)."""
        ...

    def label(self, task: Task) -> str:
        """How figures and tables name the task."""
        ...


_SETTINGS: dict[str, Setting] = {}
SETTINGS: Mapping[str, Setting] = MappingProxyType(_SETTINGS)  # every registered setting by name, live


def register_setting(name: str, setting: Setting) -> None:
    """Add a setting; `make_env(name, ...)` builds its tasks from then on."""
    if name in _SETTINGS:
        raise ValueError(f"setting {name!r} is registered twice")
    if not isinstance(setting, Setting) or "paper" not in setting.definitions:
        raise TypeError(f"setting {name!r}: needs definitions (with 'paper'), check_task, build and label")
    _SETTINGS[name] = setting


def unregister_setting(name: str) -> None:
    _SETTINGS.pop(name, None)


@contextmanager
def registered_setting(name: str, setting: Setting) -> Iterator[None]:
    """A setting registered for the duration of a `with` block (tests)."""
    register_setting(name, setting)
    try:
        yield
    finally:
        unregister_setting(name)


def setting_names() -> tuple[str, ...]:
    return tuple(_SETTINGS)


def get_setting(name: str) -> Setting:
    """The setting `name`; ValueError listing the registered ones if there is none."""
    if name not in _SETTINGS:
        raise ValueError(f"unknown setting {name!r}; allowed: {', '.join(_SETTINGS)}")
    return _SETTINGS[name]


def check_task(setting: str, task: Task) -> None:
    """Raise ValueError naming the setting's allowed values if `task` is not valid."""
    get_setting(setting).check_task(task)


def check_definition(setting: str, definition: str) -> None:
    allowed = get_setting(setting).definitions
    if definition not in allowed:
        raise ValueError(f"unknown task definition {definition!r}; allowed: {', '.join(allowed)}")


def task_label(setting: str, task: Task) -> str:
    """How figures name a task of `setting` (str(task) for a setting that is no longer registered)."""
    return _SETTINGS[setting].label(task) if setting in _SETTINGS else str(task)


def default_label(task: Task) -> str:
    """str() of a number, None or name; `key=value, ...` of a record."""
    if isinstance(task, Mapping):
        return ", ".join(f"{k}={default_label(v)}" for k, v in task.items())
    return str(task)


__all__ = [
    "SETTINGS",
    "Setting",
    "Task",
    "check_definition",
    "check_task",
    "default_label",
    "get_setting",
    "register_setting",
    "registered_setting",
    "setting_names",
    "task_label",
    "unregister_setting",
]
