"""Settings of tasks (a registry; the paper's five Gymnasium MuJoCo families first) and the delayed-reward wrapper."""

from pipeline.envs.delay import DelayedReward
from pipeline.envs.families import DEFINITIONS, make_env, make_raw_env
from pipeline.envs.registry import (
    SETTINGS,
    Setting,
    Task,
    check_task,
    get_setting,
    register_setting,
    registered_setting,
    task_label,
)

__all__ = [
    "DEFINITIONS",
    "SETTINGS",
    "DelayedReward",
    "Setting",
    "Task",
    "check_task",
    "get_setting",
    "make_env",
    "make_raw_env",
    "register_setting",
    "registered_setting",
    "task_label",
]
