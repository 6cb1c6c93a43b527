"""What the transfer stages (pretrain_tasks, collect, train_translator, evaluate_transfer) share:
the setting's transfer spec, its envs, its per-task policies and the output layout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium

from pipeline.agents.td3 import TD3
from pipeline.config import Params, TransferSet
from pipeline.envs import make_env


def transfer_spec_or_exit(params: Params, setting: str) -> TransferSet:
    if setting not in params.transfer:
        allowed = ", ".join(params.transfer)
        print(f"error: setting {setting!r} is not in params 'transfer'; allowed: {allowed}", file=sys.stderr)
        raise SystemExit(2)
    return params.transfer[setting]


def task_envs(params: Params, setting: str, tasks: list) -> list[gymnasium.Env]:
    """One env per task, dense reward, the profile's time limit and the params' task definition."""
    definition = params.task_definition.value
    return [
        make_env(setting, task, max_episode_steps=params.budget.max_episode_steps, definition=definition)
        for task in tasks
    ]


def policies_path(root: Path, setting: str) -> Path:
    return root / "data" / "pretrain_tasks" / setting / "td3.pt"


def dataset_path(root: Path, setting: str) -> Path:
    return root / "data" / "datasets" / setting


def translators_path(root: Path, setting: str) -> Path:
    return root / "data" / "translators" / setting


def policies_meta(params: Params, setting: str) -> dict[str, Any]:
    """What the per-task policies' checkpoint says it holds; loading checks every field."""
    tasks = list(params.transfer[setting].tasks)
    return {"setting": setting, "tasks": tasks, "task_definition": params.task_definition.value}


def task_policies(params: Params, setting: str, env: gymnasium.Env, path: Path) -> TD3:
    """The good policy of every transfer task as one TD3 whose member k is task k's."""
    n_tasks = len(params.transfer[setting].tasks)
    agent = TD3(
        env.observation_space.shape[0],
        env.action_space.shape[0],
        env.action_space.low,
        env.action_space.high,
        params.td3,
        seed=params.seed,
        n_seeds=n_tasks,
    )
    try:
        agent.load(path, policies_meta(params, setting))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return agent
