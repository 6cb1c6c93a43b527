"""Task families of the paper (Gymnasium v5 MuJoCo) and the delayed-reward wrapper."""

from pipeline.envs.delay import DelayedReward
from pipeline.envs.families import DEFINITIONS, SETTINGS, Task, check_task, make_env, make_raw_env

__all__ = ["DEFINITIONS", "SETTINGS", "DelayedReward", "Task", "check_task", "make_env", "make_raw_env"]
