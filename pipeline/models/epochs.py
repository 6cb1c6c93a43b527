"""The epoch loop every fit of F, C and H shares: a schedule, a progress bar, mean losses per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from pipeline.guards import NonFiniteError

EpochLog = Callable[[int, dict[str, float]], None]  # (epoch, mean loss by name)


class Schedule(NamedTuple):
    epochs: int
    updates_per_epoch: int


def phase_lr(rates: Sequence[float], epoch: int, epochs: int, shares: Sequence[float] | None = None) -> float:
    """The learning rate of `epoch` when `rates` split the epochs into consecutive phases, phase p taking
    `shares[p]` / sum(shares) of them (equal shares when None). Epoch e is in the phase whose span holds
    its start e / epochs (the authors' 1/6, 1/3, 1/2 of 30 epochs: 5, 10 and 15 epochs)."""
    shares = [1.0] * len(rates) if shares is None else list(shares)
    if len(shares) != len(rates) or any(share <= 0 for share in shares):
        raise ValueError(f"need one share > 0 per rate, got rates {list(rates)} and shares {shares}")
    position, total, end = epoch / epochs, sum(shares), 0.0
    for rate, share in zip(rates, shares, strict=True):
        end += share / total
        if position < end - 1e-9:
            return rate
    return rates[-1]


def run_epochs(
    schedule: Schedule,
    update: Callable[[int], dict[str, torch.Tensor]],
    *,
    name: str,
    progress: bool = False,
    on_epoch: EpochLog | None = None,
    heldout: Callable[[], dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """Call `update(epoch)` updates_per_epoch times per epoch; return (and pass to `on_epoch`) the mean of
    each loss it returns, per epoch, plus what `heldout()` measures after the epoch (losses on data the
    fit does not train on). A non-finite training loss raises NonFiniteError naming it and the epoch."""
    if schedule.epochs < 1 or schedule.updates_per_epoch < 1:
        raise ValueError(f"epochs and updates_per_epoch must be >= 1, got {tuple(schedule)}")
    history = []
    bar = tqdm(range(schedule.epochs), desc=name, disable=not progress, unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        sums: dict[str, float] = {}
        for _ in range(schedule.updates_per_epoch):
            for key, value in update(epoch).items():
                value = float(value)
                if not math.isfinite(value):
                    raise NonFiniteError(f"non-finite {key} loss ({value}) in {name}, epoch {epoch}")
                sums[key] = sums.get(key, 0.0) + value
        means = {key: total / schedule.updates_per_epoch for key, total in sums.items()}
        if heldout is not None:
            means |= heldout()
        history.append(means)
        bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()})
        if on_epoch is not None:
            on_epoch(epoch, means)
    return history
