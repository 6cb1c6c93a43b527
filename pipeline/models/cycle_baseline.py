"""The Table 1 baseline translator of Zhang et al. 2020c (dynamics cycle-consistency).

One source task, one target task with other dynamics and the same spaces. H (`translator`) maps a
source action to a target action, H_inv (`inverse`) maps back, and a discriminator D scores
(state, action) pairs as real target-task pairs. H and H_inv minimize

    adversarial_weight    * (D(s, H(s, a_src)) - 1)²                                  (LSGAN)
  + domain_cycle_weight   * (|H_inv(s, H(s, a_src)) - a_src| + |H(s, H_inv(s, a_tgt)) - a_tgt|)
  + dynamics_cycle_weight * |F_tgt(s, H(s, a_src)) - Δs_src|

with F_tgt the target task's trained forward model (its mean, normalized Δs) held fixed, and D
minimizes ½ ((D(real) - 1)² + D(fake)²), stepping first on each batch. Action differences are
measured in units of the half action range; every term is a batch mean.

The authors' code points the other way: F is the source task's model, the map that meets F and D
takes target actions to source actions, and the deployed source -> target map is the inverse,
trained only by the cycle term. Passing the tasks swapped (target transitions as `source`, source
(s, a) as `target`, F of the source task) and deploying `inverse` recovers that orientation. Their
D sees the action alone; this one also sees the state.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import functional_call

from pipeline.models.config import CycleTranslatorConfig
from pipeline.models.epochs import EpochLog, Schedule, run_epochs
from pipeline.models.forward import GaussianForwardModel
from pipeline.models.normalizer import Normalizer
from pipeline.models.translator import ActionTranslator

__all__ = [
    "ActionDiscriminator",
    "CycleLosses",
    "CycleTranslator",
    "cycle_losses",
    "discriminator_loss",
    "train_cycle_translator",
]


class ActionDiscriminator(nn.Module):
    """D(s, a) -> a real-valued score (LSGAN: 1 for real target-task pairs, 0 for translated ones).
    Standardized state and action mapped from [low, high] to [-1, 1], then ReLU layers of `hidden`
    and hidden // 4 units (the authors' 256-64)."""

    def __init__(self, obs_dim: int, action_dim: int, low: torch.Tensor, high: torch.Tensor, *, hidden: int = 256):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low.shape != (action_dim,) or high.shape != (action_dim,) or not bool((low < high).all()):
            raise ValueError(f"low and high must be [{action_dim}] with low < high")
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)
        self.state_norm = Normalizer(obs_dim)
        second = max(hidden // 4, 1)
        self.net = nn.Sequential(
            nn.Linear(obs_dim + action_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, second),
            nn.ReLU(),
            nn.Linear(second, 1),
        )

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """states [..., obs], actions [..., act] -> scores [...]."""
        unit_actions = (actions - self.action_bias) / self.action_scale
        return self.net(torch.cat([self.state_norm(states), unit_actions], -1)).squeeze(-1)


class CycleTranslator(nn.Module):
    """H (`translator`), H_inv (`inverse`), both context-free `ActionTranslator`s, and D (`discriminator`)."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        low: torch.Tensor,
        high: torch.Tensor,
        *,
        embed: int = 128,
        hidden: int = 256,
        layers: int = 2,
        disc_hidden: int = 256,
    ):
        super().__init__()
        sizes = {"embed": embed, "hidden": hidden, "layers": layers}
        self.translator = ActionTranslator(obs_dim, action_dim, low, high, **sizes)
        self.inverse = ActionTranslator(obs_dim, action_dim, low, high, **sizes)
        self.discriminator = ActionDiscriminator(obs_dim, action_dim, low, high, hidden=disc_hidden)

    def forward(self, states: torch.Tensor, source_actions: torch.Tensor) -> torch.Tensor:
        """The translated target actions H(s, a_src), within [low, high]."""
        return self.translator(states, source_actions)

    def fit_normalizers(self, states: torch.Tensor) -> None:
        """Fit the state normalizers of H, H_inv and D (pass the states of both tasks)."""
        for module in (self.translator, self.inverse, self.discriminator):
            module.state_norm.fit(states)

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of H and H_inv (D's are `discriminator.parameters()`)."""
        return chain(self.translator.parameters(), self.inverse.parameters())


class CycleLosses(NamedTuple):
    adversarial: torch.Tensor  # LSGAN loss of H against D (D held fixed)
    domain_cycle: torch.Tensor  # both back-translation L1 terms, summed
    dynamics_cycle: torch.Tensor  # L1 of F's mean for H's action against the source Δs (F held fixed)
    generator: torch.Tensor  # the weighted sum H and H_inv minimize
    discriminator: torch.Tensor  # D's LSGAN loss (translated actions detached)


def _frozen(module: nn.Module, *args: torch.Tensor) -> Any:
    """module(*args) with detached copies of its parameters: gradients reach the inputs only."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, args)


def discriminator_loss(
    discriminator: ActionDiscriminator,
    target_states: torch.Tensor,
    target_actions: torch.Tensor,
    states: torch.Tensor,
    translated: torch.Tensor,
) -> torch.Tensor:
    """½ ((D(s_tgt, a_tgt) - 1)² + D(s, H(s, a_src))²); the translated actions are detached."""
    real = discriminator(target_states, target_actions)
    fake = discriminator(states, translated.detach())
    return ((real - 1).square().mean() + fake.square().mean()) / 2


def cycle_losses(
    model: CycleTranslator,
    forward_model: GaussianForwardModel,
    source_states: torch.Tensor,
    source_actions: torch.Tensor,
    source_deltas: torch.Tensor,
    target_states: torch.Tensor,
    target_actions: torch.Tensor,
    config: CycleTranslatorConfig,
) -> CycleLosses:
    """The baseline's losses on one batch of source transitions (`source_deltas` normalized by
    forward_model.delta_norm) and one of target-task (s, a) pairs. `generator` gives gradients to H
    and H_inv only; `discriminator` to D only."""
    translated = model.translator(source_states, source_actions)
    adversarial = (_frozen(model.discriminator, source_states, translated) - 1).square().mean()
    scale = model.translator.action_scale
    back = model.inverse(source_states, translated)
    forth = model.translator(target_states, model.inverse(target_states, target_actions))
    domain_cycle = ((back - source_actions).abs() / scale).mean() + ((forth - target_actions).abs() / scale).mean()
    mean, _ = _frozen(forward_model, source_states, translated)
    dynamics_cycle = (mean - source_deltas).abs().mean()
    generator = (
        config.adversarial_weight * adversarial
        + config.domain_cycle_weight * domain_cycle
        + config.dynamics_cycle_weight * dynamics_cycle
    )
    discriminator = discriminator_loss(model.discriminator, target_states, target_actions, source_states, translated)
    return CycleLosses(adversarial, domain_cycle, dynamics_cycle, generator, discriminator)


def train_cycle_translator(
    model: CycleTranslator,
    forward_model: GaussianForwardModel,
    source: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    target: tuple[torch.Tensor, torch.Tensor],
    config: CycleTranslatorConfig,
    schedule: Schedule,
    *,
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: EpochLog | None = None,
) -> list[dict[str, float]]:
    """Fit H, H_inv and D: `schedule.epochs` x `schedule.updates_per_epoch` updates, each on `batch_size`
    rows drawn from `source` (states, actions, normalized Δs) and from `target` (states, actions) with `generator`.

    Each update steps D on the batch first, then H and H_inv against the updated D (an Adam for D and
    one for H and H_inv, both at lr `config.lr`); F is never changed. Fits the state normalizers
    from both tasks' states first. Returns (and passes to `on_epoch`) the mean losses of each epoch;
    "discriminator" is D's loss before its step."""
    source_states, source_actions, source_deltas = source
    target_states, target_actions = target
    if not len(source_states) == len(source_actions) == len(source_deltas) > 0:
        raise ValueError("source states, actions and deltas need the same number of rows (at least one)")
    if not len(target_states) == len(target_actions) > 0:
        raise ValueError("target states and actions need the same number of rows (at least one)")
    model.fit_normalizers(torch.cat([source_states, target_states]))
    optimizer_g = torch.optim.Adam(model.generator_parameters(), lr=config.lr, foreach=True)
    optimizer_d = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr, foreach=True)

    def update(epoch: int) -> dict[str, torch.Tensor]:
        i = torch.randint(len(source_states), (config.batch_size,), generator=generator)
        j = torch.randint(len(target_states), (config.batch_size,), generator=generator)
        s, a, ds = source_states[i], source_actions[i], source_deltas[i]
        s_tgt, a_tgt = target_states[j], target_actions[j]
        with torch.no_grad():
            fake = model.translator(s, a)
        loss_d = discriminator_loss(model.discriminator, s_tgt, a_tgt, s, fake)
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        losses = cycle_losses(model, forward_model, s, a, ds, s_tgt, a_tgt, config)
        optimizer_g.zero_grad(set_to_none=True)
        losses.generator.backward()
        optimizer_g.step()
        return {key: value.detach() for key, value in losses._replace(discriminator=loss_d)._asdict().items()}

    return run_epochs(schedule, update, name="cycle translator", progress=progress, on_epoch=on_epoch)
