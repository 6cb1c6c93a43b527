"""Probabilistic forward model F(Δs | s, a, z) (PETS/MBPO style) and its training losses.

F works in normalized space: its `input_norm` standardizes (s, a) and its outputs are the mean
and log-variance of the normalized Δs (`delta_norm`); both normalizers are buffers, so a
`state_dict` carries them. The log-variance is soft-clamped to learned bounds
[min_logvar, max_logvar] (Chua et al. 2018), which `forward_loss` keeps tight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.normalizer import Normalizer


class GaussianForwardModel(nn.Module):
    """F(s, a, z) -> (mean, log-variance) of the normalized Δs; `context_dim=0` drops z."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        context_dim: int = 10,
        *,
        hidden: int = 200,
        layers: int = 4,
        max_logvar: float = 0.5,
        min_logvar: float = -10.0,
    ):
        super().__init__()
        if hidden < 1 or layers < 1:
            raise ValueError(f"hidden and layers must be >= 1, got {hidden} and {layers}")
        if not min_logvar < max_logvar:
            raise ValueError(f"min_logvar ({min_logvar}) must be below max_logvar ({max_logvar})")
        self.obs_dim, self.action_dim, self.context_dim = obs_dim, action_dim, context_dim
        self.input_norm = Normalizer(obs_dim + action_dim)
        self.delta_norm = Normalizer(obs_dim)
        trunk: list[nn.Module] = []
        width = obs_dim + action_dim + context_dim
        for _ in range(layers):
            trunk += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.trunk = nn.Sequential(*trunk)
        self.mean_head = nn.Linear(hidden, obs_dim)
        self.logvar_head = nn.Linear(hidden, obs_dim)
        self.max_logvar = nn.Parameter(torch.full((obs_dim,), float(max_logvar)))
        self.min_logvar = nn.Parameter(torch.full((obs_dim,), float(min_logvar)))

    def fit_normalizers(self, states: torch.Tensor, actions: torch.Tensor, deltas: torch.Tensor) -> None:
        self.input_norm.fit(torch.cat([states, actions], -1))
        self.delta_norm.fit(deltas)

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """states [..., obs], actions [..., act], z broadcastable to [..., context_dim] -> mean, logvar [..., obs]."""
        x = self.input_norm(torch.cat([states, actions], -1))
        if self.context_dim > 0:
            if z is None:
                raise ValueError(f"this model is conditioned on a {self.context_dim}-dim context; pass z")
            x = torch.cat([x, z.expand(*x.shape[:-1], self.context_dim)], -1)
        elif z is not None:
            raise ValueError("this model has no context (context_dim=0); pass z=None")
        h = self.trunk(x)
        logvar = self.max_logvar - F.softplus(self.max_logvar - self.logvar_head(h))
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return self.mean_head(h), logvar

    @torch.no_grad()
    def predict_delta(self, states: torch.Tensor, actions: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """The mean Δs in the environment's units."""
        return self.delta_norm.inverse(self(states, actions, z)[0])


def nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood without its constant, as the mean over every element of
    (target - mean)² e^-logvar + logvar: 2 / obs_dim times the per-transition NLL. This is the
    PETS/MBPO (and authors') scale, which sets the weight of the log-variance bound penalty."""
    return ((target - mean).square() * torch.exp(-logvar) + logvar).mean()


def forward_loss(
    model: GaussianForwardModel,
    states: torch.Tensor,
    actions: torch.Tensor,
    z: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    bound_weight: float = 0.01,
) -> torch.Tensor:
    """NLL of the normalized Δs `targets` (model.delta_norm(Δs)) + bound_weight * (max_logvar - min_logvar)."""
    mean, logvar = model(states, actions, z)
    return nll(mean, logvar, targets) + bound_weight * (model.max_logvar.sum() - model.min_logvar.sum())


def multi_step_loss(
    model: GaussianForwardModel,
    z: torch.Tensor | None,
    states: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    *,
    bound_weight: float = 0.01,
) -> torch.Tensor:
    """L_forw over M future steps (eq. 1): the context z [B, context_dim] of the history before t conditions
    each one-step prediction of targets[:, m] (the normalized Δs of step t+m) from states, actions [B, M, ...].
    Not a rollout: every step starts from the true state. Equals the mean over m of `forward_loss`."""
    if z is not None:
        z = z.unsqueeze(-2)
    return forward_loss(model, states, actions, z, targets, bound_weight=bound_weight)
