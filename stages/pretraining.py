"""What pretrain_source and pretrain_tasks share: TD3 on one or more tasks, resumable, guarded."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.agents.td3 import TD3
from pipeline.config import Params
from pipeline.envs import make_env
from pipeline.memory import td3_training
from pipeline.resume import ResumeFolder
from pipeline.training import EvalPoint, NonFiniteError, train_td3
from stages.common import check_memory_or_exit, open_resume_or_exit, resume_folder, run_fingerprint


def pretrain(
    params: Params,
    root: Path,
    *,
    stage: str,
    setting: str,
    tasks: list[Any],
    steps: int,
    checkpoint: Path,
    meta: dict[str, Any],
    on_eval: Callable[[list[list[EvalPoint]]], None],
    progress: bool,
) -> tuple[list[list[EvalPoint]], float]:
    """Train member k of one TD3 on tasks[k] (seed + k) for `steps` env steps and save it to `checkpoint`.

    Resumes from the stage's resume folder when a state of the same configuration is there, and
    removes the folder once the checkpoint is written. A non-finite quantity stops the stage
    (exit 3) with the step and the resume state kept. Returns the curves and the wall time."""
    budget, definition = params.budget, params.task_definition.value
    envs, eval_envs = (
        [make_env(setting, task, max_episode_steps=budget.max_episode_steps, definition=definition) for task in tasks]
        for _ in range(2)
    )
    space = envs[0].action_space
    obs_dim, action_dim = envs[0].observation_space.shape[0], space.shape[0]
    check_memory_or_exit(td3_training(f"{stage} {setting}", obs_dim, action_dim, steps, len(tasks)))
    agent = TD3(obs_dim, action_dim, space.low, space.high, params.td3, seed=params.seed, n_seeds=len(tasks))
    resume = ResumeFolder(
        resume_folder(root, stage, setting),
        fingerprint=run_fingerprint(params, stage, setting),
        name=f"{stage} {setting}",
        unit="env step",
        total=steps,
        every=budget.checkpoint_every,
    )
    started = time.perf_counter()
    with open_resume_or_exit(resume):
        try:
            curves = train_td3(
                agent,
                envs,
                eval_envs,
                steps=steps,
                start_steps=min(budget.pretrain_start_steps, steps),
                eval_every=budget.eval_every,
                eval_episodes=budget.eval_episodes,
                seed=params.seed,
                progress=progress,
                on_eval=on_eval,
                resume=resume,
                checkpoint_every=budget.checkpoint_every,
            )
        except NonFiniteError as err:
            print(f"error: {stage} {setting}: {err}", file=sys.stderr)
            raise SystemExit(3) from None
        agent.save(checkpoint, meta)
        resume.remove()
    return curves, time.perf_counter() - started
