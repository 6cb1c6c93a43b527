"""Actor and twin-critic networks of TD3 (2 hidden ReLU layers, as sfujim/TD3)."""

from __future__ import annotations

import math

import torch
from torch import nn


class Actor(nn.Module):
    """Deterministic policy: tanh output mapped onto the action bounds."""

    def __init__(self, in_dim: int, action_dim: int, hidden: int, action_low: torch.Tensor, action_high: torch.Tensor):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, action_dim)
        )
        self.register_buffer("action_scale", (action_high - action_low) / 2)
        self.register_buffer("action_bias", (action_high + action_low) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x)) * self.action_scale + self.action_bias


class TwinCritic(nn.Module):
    """The two Q networks of TD3 as one module: weights stacked [2, in, out], one baddbmm a layer.

    Same function and initial distribution as two nn.Linear MLPs, in a third of the kernel
    launches. `forward` returns both Q values, shape [2, B].
    """

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        sizes = [(in_dim, hidden), (hidden, hidden), (hidden, 1)]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(2, i, o)) for i, o in sizes)
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(2, 1, o)) for _, o in sizes)
        for w, b in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(w.shape[1])  # nn.Linear's default init
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(2, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)

    def q1(self, x: torch.Tensor) -> torch.Tensor:
        """The first critic alone (the actor's objective), shape [B]."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.addmm(b[0], h, w[0])
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)
