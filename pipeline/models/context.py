"""Context encoder C: K past (Δs, a) pairs of one task -> a latent context z (paper Sec. 3.2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pipeline.models.normalizer import Normalizer


class ContextEncoder(nn.Module):
    """MLP over a flattened segment of K (Δs, a) pairs, each step standardized by `step_norm`.

    A segment is [..., K, obs_dim + action_dim] (steps oldest first, each step Δs then a) or the
    same flattened to [..., K * (obs_dim + action_dim)].
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        *,
        history: int = 10,
        z_dim: int = 10,
        hidden: Sequence[int] = (256, 128, 64),
    ):
        super().__init__()
        if history < 1 or z_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"history, z_dim and hidden sizes must be >= 1, got {history}, {z_dim}, {list(hidden)}")
        self.history, self.step_dim, self.z_dim = history, obs_dim + action_dim, z_dim
        self.step_norm = Normalizer(self.step_dim)
        layers: list[nn.Module] = []
        width = history * self.step_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, z_dim))
        self.mlp = nn.Sequential(*layers)

    def steps(self, segments: torch.Tensor) -> torch.Tensor:
        """Either layout as [..., K, step_dim]."""
        k, d = self.history, self.step_dim
        if segments.ndim >= 2 and tuple(segments.shape[-2:]) == (k, d):
            return segments
        if segments.shape[-1] == k * d:
            return segments.unflatten(-1, (k, d))
        raise ValueError(f"segments must be [..., {k}, {d}] or [..., {k * d}], got {list(segments.shape)}")

    def fit_normalizer(self, segments: torch.Tensor) -> None:
        self.step_norm.fit(self.steps(segments))

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        """segments (either layout) -> z [..., z_dim]."""
        return self.mlp(self.step_norm(self.steps(segments)).flatten(-2))


def task_feature(encoder: ContextEncoder, segments: torch.Tensor) -> torch.Tensor:
    """z(i): the mean embedding of a batch of segments [N, ...] of one task -> [z_dim]."""
    return encoder(segments).reshape(-1, encoder.z_dim).mean(0)
