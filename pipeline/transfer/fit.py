"""Fitting F, C and H on fixed datasets (paper Sec. 3.2, 3.3): the training loops of the transfer stages.

Every fit runs `epochs` x `updates_per_epoch` Adam steps on batches drawn with the caller's
torch generator, fits the models' normalizers from the data first, shows a progress bar over
epochs and reports the mean losses of each epoch to `on_epoch`. Weight initialization is the
caller's (seed torch before building the models).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig
from pipeline.models.context import ContextEncoder, task_feature
from pipeline.models.contrastive import task_contrastive_loss
from pipeline.models.epochs import EpochLog, Schedule, phase_lr, run_epochs
from pipeline.models.forward import GaussianForwardModel, forward_loss, multi_step_loss
from pipeline.models.translator import ActionTranslator, translator_loss
from pipeline.transfer.windows import TaskData, Windows


def fit_forward_model(
    model: GaussianForwardModel,
    data: TaskData,
    config: ForwardModelConfig,
    schedule: Schedule,
    *,
    generator: torch.Generator,
    norm_data: Sequence[TaskData] = (),
    progress: bool = False,
    on_epoch: EpochLog | None = None,
) -> list[dict[str, float]]:
    """One-step NLL fit of a context-free F on one task's transitions (Table 1: the target task).

    Normalizer statistics come from `data` plus `norm_data` (the authors pool source and target)."""
    pooled = [data, *norm_data]
    model.fit_normalizers(*(torch.cat([getattr(d, f) for d in pooled]) for f in ("states", "actions", "deltas")))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    n = len(data.states)

    def step(epoch: int) -> dict[str, torch.Tensor]:
        rows = torch.randint(n, (config.batch_size,), generator=generator)
        targets = model.delta_norm(data.deltas[rows])
        loss = forward_loss(
            model, data.states[rows], data.actions[rows], None, targets, bound_weight=config.logvar_bound_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"forward": loss.detach()}

    return run_epochs(schedule, step, name="forward model", progress=progress, on_epoch=on_epoch)


def fit_context_and_forward(
    encoder: ContextEncoder,
    model: GaussianForwardModel,
    tasks: Sequence[Windows],
    context: ContextConfig,
    forward: ForwardModelConfig,
    schedule: Schedule,
    *,
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: EpochLog | None = None,
) -> list[dict[str, float]]:
    """C and F jointly on every task (paper eq. 1 and 2): L_forw over M future steps from the context of
    the K steps before, plus `contrastive_weight` x L_cont. Each update draws `forward.batch_size`
    transitions per task, as batch_size // M windows of M steps; same-task pairs are two windows of
    one task, different-task pairs a window and one of every other task (`task_contrastive_loss`)."""
    every = [w.data for w in tasks]
    model.fit_normalizers(*(torch.cat([getattr(d, f) for d in every]) for f in ("states", "actions", "deltas")))
    encoder.step_norm.fit(torch.cat([torch.cat([d.deltas, d.actions], -1) for d in every]))  # per (Δs, a) step
    optimizer = torch.optim.Adam(
        [
            {"params": model.parameters(), "lr": forward.lr, "weight_decay": forward.weight_decay},
            {"params": encoder.parameters(), "lr": context.lr},
        ],
        foreach=True,
    )
    batch = max(1, forward.batch_size // forward.future_steps)

    def step(epoch: int) -> dict[str, torch.Tensor]:
        windows = [w.sample(batch, generator) for w in tasks]
        segments = torch.stack([w.context for w in windows])  # [T, B, K, step]
        z = encoder(segments)  # [T, B, z]
        states, actions, deltas = (torch.cat([getattr(w, f) for w in windows]) for f in ("states", "actions", "deltas"))
        l_forw = multi_step_loss(
            model, z.flatten(0, 1), states, actions, model.delta_norm(deltas), bound_weight=forward.logvar_bound_weight
        )
        losses = {"forward": l_forw}
        loss = l_forw
        if context.contrastive_weight > 0:
            partner = z[:, torch.randperm(batch, generator=generator)]  # same task, another window
            l_cont = task_contrastive_loss(z, partner, context.margin)
            loss = loss + context.contrastive_weight * l_cont
            losses["contrastive"] = l_cont
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {k: v.detach() for k, v in losses.items()}

    return run_epochs(schedule, step, name="context + forward", progress=progress, on_epoch=on_epoch)


@torch.no_grad()
def task_features(
    encoder: ContextEncoder, tasks: Sequence[Windows], segments: int, generator: torch.Generator
) -> torch.Tensor:
    """z(i) for every task: [T, z_dim], each the mean embedding of `segments` context segments."""
    return torch.stack([task_feature(encoder, w.contexts(segments, generator)) for w in tasks])


def fit_translator(
    translator: ActionTranslator,
    model: GaussianForwardModel,
    sources: Sequence[TaskData],
    config: TranslatorConfig,
    schedule: Schedule,
    *,
    generator: torch.Generator,
    features: torch.Tensor | None = None,
    progress: bool = False,
    on_epoch: EpochLog | None = None,
) -> list[dict[str, float]]:
    """H through a frozen F (paper eq. 3, or the authors' L1 with `config.loss`).

    Without `features`: the one-pair translator of Table 1; `sources` is the source task alone and F
    models the target. With `features` [T, z_dim] (task i's z(i)): the multi-task translator of
    Fig. 5; every batch row draws a source task j (its transition from `sources[j]`) and a target
    task i uniformly, H gets (z(j), z(i)) and F is conditioned on z(i). Adam restarts at each phase
    change of `config.lr` (as the authors' code)."""
    if features is not None and len(features) != len(sources):
        raise ValueError(f"{len(features)} task features for {len(sources)} tasks")
    if features is None and len(sources) != 1:
        raise ValueError("a translator without task features translates from one source task")
    translator.state_norm.fit(torch.cat([d.states for d in sources]))
    states = torch.cat([d.states for d in sources])
    actions = torch.cat([d.actions for d in sources])
    deltas = model.delta_norm(torch.cat([d.deltas for d in sources]))
    task_of_row = torch.cat([torch.full((len(d.states),), j) for j, d in enumerate(sources)])
    optimizer: torch.optim.Optimizer | None = None
    current_lr: float | None = None

    def step(epoch: int) -> dict[str, torch.Tensor]:
        nonlocal optimizer, current_lr
        lr = phase_lr(config.lr, epoch, schedule.epochs)
        if lr != current_lr:
            optimizer, current_lr = torch.optim.Adam(translator.parameters(), lr=lr, foreach=True), lr
        rows = torch.randint(len(states), (config.batch_size,), generator=generator)
        z_src = z_tgt = None
        if features is not None:
            z_src = features[task_of_row[rows]]
            z_tgt = features[torch.randint(len(features), (config.batch_size,), generator=generator)]
        loss = translator_loss(translator, model, states[rows], actions[rows], deltas[rows], z_src, z_tgt, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"translator": loss.detach()}

    return run_epochs(schedule, step, name="translator", progress=progress, on_epoch=on_epoch)
