"""MQL's trainer module (`pipeline.methods.protocol.MethodTrainer`): the learner from params, its checkpoints."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.atomic import write_bytes
from pipeline.config import Params
from pipeline.memory import FLOAT, INT64, Estimate
from pipeline.methods.mql.learner import MQLLearner
from pipeline.methods.protocol import Run
from pipeline.methods.registry import MethodSpec


def build(run: Run) -> MQLLearner:
    """The run's seeds in one learner (separate models, stepped together)."""
    params = run.params
    return MQLLearner(run.envs, params.mql, seed=params.seed, first_seed=run.seeds[0], steps=run.steps,
                      start_steps=params.budget.meta_start_steps // run.n_tasks)  # fmt: skip


def estimate_memory(
    params: Params, spec: MethodSpec, obs_dim: int, action_dim: int, tasks: int, seeds: int, steps: int
) -> Estimate:
    """The replay (at most `steps` rows per task): float32 transitions and their episode ids."""
    row = (2 * obs_dim + action_dim + 2) * FLOAT + INT64
    parts = {"replay": seeds * tasks * min(params.mql.replay_capacity, steps) * row}
    return Estimate("meta_train", parts, ("mql.replay_capacity",))


def finish(learners: Sequence[MQLLearner], folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """agents.pt: every seed's actor, critics and targets (with the run's meta)."""
    (learner,) = learners
    buffer = io.BytesIO()
    torch.save({"agents": [agent.state_dict() for agent in learner.agents], "meta": meta}, buffer)
    write_bytes(folder / "agents.pt", buffer.getvalue())
    return {"adaptation": learner.config.adaptation, "snapshot_episodes": learner.config.snapshot_episodes}
