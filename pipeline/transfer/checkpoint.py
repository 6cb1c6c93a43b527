"""The models one translator-training run produces, built from their configs, saved and loaded together.

One run (one seed) fits, on a setting's dataset: for Table 1, the target task's context-free F
(`pair_forward`), our one-pair translator (`pair_translator`) and the Zhang et al. baseline
(`cycle_baseline`); for Fig. 5, the context encoder C (`encoder`), the context-conditioned F
(`context_forward`), the multi-task translator (`translator`) and the task features z(i).
Checkpoints hold only tensors, strings and numbers (`torch.load(weights_only=True)`), and name
the setting and tasks they were trained for; loading checks both.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pipeline.atomic import write_bytes
from pipeline.models.config import ContextConfig, CycleTranslatorConfig, ForwardModelConfig, TranslatorConfig
from pipeline.models.context import ContextEncoder
from pipeline.models.cycle_baseline import CycleTranslator
from pipeline.models.forward import GaussianForwardModel
from pipeline.models.translator import ActionTranslator

CHECKPOINT_VERSION = 1


class TransferModels(NamedTuple):
    pair_forward: GaussianForwardModel
    pair_translator: ActionTranslator
    cycle_baseline: CycleTranslator
    encoder: ContextEncoder
    context_forward: GaussianForwardModel
    translator: ActionTranslator


def build_models(
    obs_dim: int,
    action_dim: int,
    low: torch.Tensor,
    high: torch.Tensor,
    context: ContextConfig,
    forward: ForwardModelConfig,
    translator: TranslatorConfig,
    cycle: CycleTranslatorConfig,
) -> TransferModels:
    """Fresh models (weights from torch's global generator: seed it first)."""

    def forward_model(context_dim: int) -> GaussianForwardModel:
        return GaussianForwardModel(
            obs_dim,
            action_dim,
            context_dim,
            hidden=forward.hidden,
            layers=forward.layers,
            max_logvar=forward.max_logvar,
            min_logvar=forward.min_logvar,
        )

    def action_translator(context_dim: int) -> ActionTranslator:
        sizes = {"embed": translator.embed, "hidden": translator.hidden, "layers": translator.layers}
        return ActionTranslator(obs_dim, action_dim, low, high, context_dim, **sizes)

    return TransferModels(
        pair_forward=forward_model(0),
        pair_translator=action_translator(0),
        cycle_baseline=CycleTranslator(
            obs_dim,
            action_dim,
            low,
            high,
            embed=translator.embed,
            hidden=translator.hidden,
            layers=translator.layers,
            disc_hidden=cycle.disc_hidden,
        ),
        encoder=ContextEncoder(
            obs_dim, action_dim, history=context.history, z_dim=context.z_dim, hidden=context.hidden
        ),
        context_forward=forward_model(context.z_dim),
        translator=action_translator(context.z_dim),
    )


def save_models(path: str | Path, models: TransferModels, features: torch.Tensor, meta: dict[str, Any]) -> None:
    """`meta` must hold 'setting' and 'tasks' (and may hold other plain values: seed, pair, profile)."""
    state = {
        "version": CHECKPOINT_VERSION,
        "meta": meta,
        "features": features,
        **{name: module.state_dict() for name, module in models._asdict().items()},
    }
    buffer = io.BytesIO()  # torch names the archive after the file: a temp name would change the bytes
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def load_models(path: str | Path, models: TransferModels, *, setting: str, tasks: list) -> tuple[torch.Tensor, dict]:
    """Load weights saved by `save_models` into `models`; returns (features, meta).

    Raises ValueError naming the file and the field when the version, setting or tasks differ."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: field 'version': expected {CHECKPOINT_VERSION}, found {state.get('version')!r}")
    meta = state["meta"]
    for field, expected in (("setting", setting), ("tasks", list(tasks))):
        if meta.get(field) != expected:
            raise ValueError(f"{path}: field 'meta.{field}': expected {expected!r}, found {meta.get(field)!r}")
    for name, module in models._asdict().items():
        try:
            module.load_state_dict(state[name])
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"{path}: field '{name}': does not fit the configured model ({err})") from None
    return state["features"], meta
