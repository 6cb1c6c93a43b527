"""Action translator H(s, a_src, z_src, z_tgt) -> a_tgt (paper Sec. 3.3) and its loss through a frozen F.

H maps an action that works on the source task to the action that, from the same state, yields
the same next state on the target task. With `context_dim=0` it is the one-pair translator
H(s, a) of Table 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from pipeline.models.config import TranslatorLoss
from pipeline.models.forward import GaussianForwardModel, nll
from pipeline.models.normalizer import Normalizer

__all__ = ["ActionTranslator", "TranslatorLoss", "translator_loss"]


class ActionTranslator(nn.Module):
    """Each input through its own ReLU layer of `embed` units, concatenated, `layers` ReLU layers of
    `hidden` units, tanh mapped onto [low, high]. States are standardized by `state_norm` and source
    actions mapped from [low, high] to [-1, 1] on the way in."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        low: torch.Tensor,
        high: torch.Tensor,
        context_dim: int = 0,
        *,
        embed: int = 128,
        hidden: int = 256,
        layers: int = 2,
    ):
        super().__init__()
        if embed < 1 or hidden < 1 or layers < 1:
            raise ValueError(f"embed, hidden and layers must be >= 1, got {embed}, {hidden}, {layers}")
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low.shape != (action_dim,) or high.shape != (action_dim,) or not bool((low < high).all()):
            raise ValueError(f"low and high must be [{action_dim}] with low < high")
        self.context_dim = context_dim
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)
        self.state_norm = Normalizer(obs_dim)
        self.state_in = nn.Linear(obs_dim, embed)
        self.action_in = nn.Linear(action_dim, embed)
        self.source_in = nn.Linear(context_dim, embed) if context_dim > 0 else None
        self.target_in = nn.Linear(context_dim, embed) if context_dim > 0 else None
        trunk: list[nn.Module] = []
        width = embed * (4 if context_dim > 0 else 2)
        for _ in range(layers):
            trunk += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        trunk.append(nn.Linear(width, action_dim))
        self.trunk = nn.Sequential(*trunk)

    def forward(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        z_src: torch.Tensor | None = None,
        z_tgt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """states [..., obs], source actions [..., act], task features broadcastable to [..., context_dim]."""
        unit_actions = (actions - self.action_bias) / self.action_scale
        parts = [self.state_in(self.state_norm(states)), self.action_in(unit_actions)]
        if self.source_in is not None and self.target_in is not None:
            if z_src is None or z_tgt is None:
                raise ValueError(f"this translator is conditioned on {self.context_dim}-dim task features; pass both")
            shape = (*states.shape[:-1], self.context_dim)
            parts += [self.source_in(z_src.expand(shape)), self.target_in(z_tgt.expand(shape))]
        elif z_src is not None or z_tgt is not None:
            raise ValueError("this translator has no context (context_dim=0); pass no task features")
        x = torch.relu(torch.cat(parts, -1))
        return torch.tanh(self.trunk(x)) * self.action_scale + self.action_bias


def translator_loss(
    translator: ActionTranslator,
    forward_model: GaussianForwardModel,
    states: torch.Tensor,
    source_actions: torch.Tensor,
    source_deltas: torch.Tensor,
    z_src: torch.Tensor | None = None,
    z_tgt: torch.Tensor | None = None,
    kind: TranslatorLoss = TranslatorLoss.mean_l1,
    *,
    hold_variance: bool = True,
) -> torch.Tensor:
    """How well F on the target task, given the translated action, predicts the source transition's
    normalized Δs `source_deltas` (forward_model.delta_norm(s'_src - s)).

    Gradients reach only H: F's parameters enter as detached copies (F stays trainable elsewhere),
    and the task features are detached (C is fixed while H trains, paper Sec. 3.4). With `nll`, F's
    predicted log-variance is also held fixed (`hold_variance`), so H can lower the loss only by
    moving F's mean onto the source Δs. `hold_variance=False` is eq. 3 read literally: H then also
    lowers the loss by moving where F is unsure (large variance), e.g. to the action bounds; it exists
    to show that (tests/test_models_translator.py, docs/algorithms/translator.md), not to train with."""
    z_src = None if z_src is None else z_src.detach()
    z_tgt = None if z_tgt is None else z_tgt.detach()
    translated = translator(states, source_actions, z_src, z_tgt)
    frozen = {name: p.detach() for name, p in forward_model.named_parameters()}
    mean, logvar = functional_call(forward_model, frozen, (states, translated, z_tgt))
    if kind is TranslatorLoss.nll:
        return nll(mean, logvar.detach() if hold_variance else logvar, source_deltas)
    if kind is TranslatorLoss.mean_l1:
        return (mean - source_deltas).abs().mean()
    raise ValueError(f"unknown translator loss {kind!r}")
