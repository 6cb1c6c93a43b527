"""PEARL's trainer module (`pipeline.methods.protocol.MethodTrainer`): the learner from params, its checkpoints."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.atomic import write_bytes
from pipeline.config import Params
from pipeline.memory import FLOAT, Estimate
from pipeline.methods.pearl.learner import PEARLLearner
from pipeline.methods.protocol import Run
from pipeline.methods.registry import MethodSpec


def build(run: Run) -> PEARLLearner:
    """All of the run's seeds as one seed-batched learner."""
    params = run.params
    return PEARLLearner(run.envs, params.pearl, seed=params.seed, first_seed=run.seeds[0], steps=run.steps,
                        start_steps=params.budget.meta_start_steps // run.n_tasks)  # fmt: skip


def estimate_memory(
    params: Params, spec: MethodSpec, obs_dim: int, action_dim: int, tasks: int, seeds: int, steps: int
) -> Estimate:
    """The replay (at most `steps` rows per task) and the encoder buffers, float32 transitions."""
    row = (2 * obs_dim + action_dim + 2) * FLOAT
    parts = {
        "replay": seeds * tasks * min(params.pearl.replay_capacity, steps) * row,
        "encoder buffers": seeds * tasks * params.pearl.encoder_capacity * row,
    }
    return Estimate("meta_train", parts, ("pearl.replay_capacity", "pearl.encoder_capacity"))


def finish(learners: Sequence[PEARLLearner], folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """agent.pt (the seeds' SAC as one seed-batched agent) and encoder.pt (their context encoders)."""
    (learner,) = learners
    learner.agent.save(folder / "agent.pt", meta)
    buffer = io.BytesIO()
    torch.save({"encoder": learner.encoder.state_dict(), "meta": meta}, buffer)
    write_bytes(folder / "encoder.pt", buffer.getvalue())
    return {"exploration_episodes": learner.config.exploration_episodes}
