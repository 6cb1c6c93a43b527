"""Per-feature standardization whose statistics travel in the model's state_dict."""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """Per-feature standardization (x - mean) / std with statistics fitted from data; identity until `fit`."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> None:
        """Statistics over every leading dimension of data [..., dim]; a near-constant feature keeps std 1."""
        flat = data.reshape(-1, self.mean.shape[0]).to(self.mean)
        std = flat.std(0, correction=0)
        self.mean.copy_(flat.mean(0))
        self.std.copy_(torch.where(std < self.eps, torch.ones_like(std), std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
