"""Fitting F, C and H on fixed datasets (paper Sec. 3.2, 3.3): the training loops of the transfer stages.

Every fit runs `epochs` x `updates_per_epoch` Adam steps on batches drawn with the caller's
torch generator, fits the models' normalizers from the data first, shows a progress bar over
epochs and reports the mean losses of each epoch to `on_epoch`. Given held-out data (episodes the
fit does not train on), each epoch also reports the loss there, as `<loss>_heldout`, measured on a
fixed subsample drawn with its own generator, so the training batches do not depend on it. Weight
initialization is the caller's (seed torch before building the models).
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

HELDOUT_ROWS = 4096  # held-out transitions (or windows) each epoch's held-out loss is measured on
HELDOUT_SEED = 0  # the subsample's generator: the same rows every epoch and every fit


def heldout_rows(n: int) -> torch.Tensor:
    """Up to HELDOUT_ROWS row indices of n, the same every call."""
    if n <= HELDOUT_ROWS:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(HELDOUT_SEED))[:HELDOUT_ROWS]


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
    heldout: TaskData | None = None,
) -> list[dict[str, float]]:
    """One-step NLL fit of a context-free F on one task's transitions (Table 1: the target task).

    Normalizer statistics come from `data` plus `norm_data` (the authors pool source and target).
    With `heldout`: F's NLL (`forward_heldout`) and the mean |error| of its mean (`forward_l1_heldout`)
    on the normalized Δs of those transitions, after every epoch."""
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

    def measure() -> dict[str, float]:
        rows = heldout_rows(len(heldout.states))
        states, actions = heldout.states[rows], heldout.actions[rows]
        targets = model.delta_norm(heldout.deltas[rows])
        with torch.no_grad():
            loss = forward_loss(model, states, actions, None, targets, bound_weight=config.logvar_bound_weight)
            error = (model(states, actions)[0] - targets).abs().mean()
        return {"forward_heldout": float(loss), "forward_l1_heldout": float(error)}

    return run_epochs(
        schedule,
        step,
        name="forward model",
        progress=progress,
        on_epoch=on_epoch,
        heldout=None if heldout is None else measure,
    )


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
    heldout: Sequence[Windows] | None = None,
) -> list[dict[str, float]]:
    """C and F jointly on every task (paper eq. 1 and 2): L_forw over M future steps from the context of
    the K steps before, plus `contrastive_weight` x L_cont. Each update draws `forward.batch_size`
    transitions per task, as batch_size // M windows of M steps; same-task pairs are two windows of
    one task, different-task pairs a window and one of every other task (`task_contrastive_loss`).
    With `heldout` (one Windows per task, of held-out episodes): L_forw there (`forward_heldout`)."""
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

    def measure() -> dict[str, float]:
        generator = torch.Generator().manual_seed(HELDOUT_SEED)
        per_task = max(1, HELDOUT_ROWS // (len(heldout) * forward.future_steps))
        windows = [w.sample(per_task, generator) for w in heldout]
        with torch.no_grad():
            z = encoder(torch.stack([w.context for w in windows])).flatten(0, 1)
            states, actions, deltas = (
                torch.cat([getattr(w, f) for w in windows]) for f in ("states", "actions", "deltas")
            )
            loss = multi_step_loss(
                model, z, states, actions, model.delta_norm(deltas), bound_weight=forward.logvar_bound_weight
            )
        return {"forward_heldout": float(loss)}

    return run_epochs(
        schedule,
        step,
        name="context + forward",
        progress=progress,
        on_epoch=on_epoch,
        heldout=None if heldout is None else measure,
    )


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
    heldout: Sequence[TaskData] | None = None,
) -> list[dict[str, float]]:
    """H through a frozen F (paper eq. 3, or the authors' L1 with `config.loss`).

    Without `features`: the one-pair translator of Table 1; `sources` is the source task alone and F
    models the target. With `features` [T, z_dim] (task i's z(i)): the multi-task translator of
    Fig. 5; every batch row draws a source task j (its transition from `sources[j]`) and a target
    task i uniformly, H gets (z(j), z(i)) and F is conditioned on z(i). Adam restarts at each phase
    change of `config.lr` (as the authors' code), the phases' lengths set by `config.lr_shares`. With
    `heldout` (held-out transitions of the same source tasks): the loss there (`translator_heldout`),
    every (j, i) pair drawn once per row with the held-out generator."""
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
        lr = phase_lr(config.lr, epoch, schedule.epochs, config.lr_shares)
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

    def measure() -> dict[str, float]:
        rows = heldout_rows(sum(len(d.states) for d in heldout))
        held_states = torch.cat([d.states for d in heldout])[rows]
        held_actions = torch.cat([d.actions for d in heldout])[rows]
        held_deltas = model.delta_norm(torch.cat([d.deltas for d in heldout])[rows])
        z_src = z_tgt = None
        if features is not None:
            task = torch.cat([torch.full((len(d.states),), j) for j, d in enumerate(heldout)])[rows]
            generator = torch.Generator().manual_seed(HELDOUT_SEED)
            z_src, z_tgt = features[task], features[torch.randint(len(features), (len(rows),), generator=generator)]
        with torch.no_grad():
            loss = translator_loss(translator, model, held_states, held_actions, held_deltas, z_src, z_tgt, config.loss)
        return {"translator_heldout": float(loss)}

    return run_epochs(
        schedule,
        step,
        name="translator",
        progress=progress,
        on_epoch=on_epoch,
        heldout=None if heldout is None else measure,
    )
