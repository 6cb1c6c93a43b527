"""MCAT's trainer module (`pipeline.methods.protocol.MethodTrainer`): the loop built from params, its checkpoints."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.agents.td3 import TD3, stack_seeds
from pipeline.atomic import write_bytes
from pipeline.config import Params
from pipeline.memory import BOOL, FLOAT, INT64, Estimate, transition_bytes
from pipeline.methods.mcat.loop import MetaTrainer, Switches, build_seed_models
from pipeline.methods.protocol import Run
from pipeline.methods.registry import MethodSpec
from pipeline.seeding import stream_seed


def seed_groups(params: Params, seeds: int) -> list[list[int]]:
    """`meta.batch_seeds`: all seeds as one batched model, else one after another (the same streams either way)."""
    return [list(range(seeds))] if params.meta.batch_seeds else [[s] for s in range(seeds)]


def build(run: Run) -> MetaTrainer:
    """Seed k's TD3 member, C, F and H (each from its own stream) and the loop over `run.envs`."""
    params, seeds, envs = run.params, run.seeds, run.envs
    budget, n_train = params.budget, run.n_tasks
    space = envs[0][0].action_space
    obs_dim, action_dim = envs[0][0].observation_space.shape[0], space.shape[0]
    agent = TD3(obs_dim, action_dim, space.low, space.high, params.td3, context_dim=params.context.z_dim,
                seed=params.seed + seeds[0], n_seeds=len(seeds))  # fmt: skip
    models = []
    for s in seeds:
        torch.manual_seed(stream_seed(params.seed + s, "meta.models"))  # C, F, H init: apart from TD3's streams
        models.append(build_seed_models(obs_dim, action_dim, space.low, space.high, params.context,
                                        params.forward_model, params.translator))  # fmt: skip
    trainer = MetaTrainer(
        agent,
        models,
        envs,
        Switches(**run.spec.options),
        meta=dataclasses.replace(params.meta, replay_capacity=min(params.meta.replay_capacity, run.steps)),
        context=params.context,
        forward=params.forward_model,
        translator=params.translator,
        sil=params.sil,
        retrain_every=max(1, budget.meta_retrain_every // n_train),
        retrain_updates=budget.meta_retrain_updates,
        seed=params.seed,
        first_seed=seeds[0],
    )
    trainer.start_steps = budget.meta_start_steps // n_train
    return trainer


def estimate_memory(
    params: Params, spec: MethodSpec, obs_dim: int, action_dim: int, tasks: int, seeds: int, steps: int
) -> Estimate:
    """Peak memory of a run of `seeds` seeds trained together on `tasks` tasks for `steps` loop steps: the
    per-task replay (at most `steps` rows per task are ever written, the capacity is capped there) with its
    context cache, and the SIL buffer (segments, not z) with its own cache."""
    rows = seeds * tasks * min(params.meta.replay_capacity, steps)
    z_dim, history = params.context.z_dim, params.context.history
    parts = {
        "task replay": rows * (transition_bytes(obs_dim, action_dim) + INT64),
        "replay z cache": rows * (z_dim * FLOAT + BOOL),
    }
    if spec.options.get("sil"):
        sil_rows = seeds * params.sil.capacity
        parts["SIL buffer"] = sil_rows * (obs_dim + action_dim + history * (obs_dim + action_dim) + 2) * FLOAT
        parts["SIL z cache"] = sil_rows * (z_dim * FLOAT + BOOL)
    keys = ("meta.replay_capacity", "sil.capacity", "meta.batch_seeds: false (one seed at a time)")
    return Estimate("meta_train", parts, keys)


def finish(learners: Sequence[MetaTrainer], folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """agent.pt (the seeds' TD3 as one seed-batched agent) and models.pt (every seed's C, F, H)."""
    agent: TD3 = stack_seeds([learner.agent for learner in learners])
    agent.save(folder / "agent.pt", meta)
    buffer = io.BytesIO()
    models = [seed for learner in learners for seed in learner.models]
    torch.save([{name: m.state_dict() for name, m in seed._asdict().items()} for seed in models], buffer)
    write_bytes(folder / "models.pt", buffer.getvalue())
    return {
        "batch_seeds": learners[0].meta.batch_seeds,
        "transferred_episodes": sum(learner.transferred_episodes for learner in learners),
    }
