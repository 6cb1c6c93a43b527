"""MQL's networks for one seed: TD3's actor and twin critics, each with its own GRU context over past steps.

The context of a transition is the GRU's last hidden state over the `history` steps before it, each step
(action, reward, next observation) of the same episode, zeros before the episode's start (the reference's
`Context` with `only_concat_context: 3`). The actor reads concat(s, context), the critics concat(s, a, context).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class GRUContext(nn.Module):
    """History [B, H, step] -> context [B, hidden]: a one-layer GRU's final hidden state."""

    def __init__(self, step_dim: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(step_dim, hidden, batch_first=True)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.gru(history)[1][0]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ContextActor(nn.Module):
    """a = tanh(MLP(s, GRU(history))) mapped onto the action bounds."""

    def __init__(self, obs_dim: int, action_dim: int, step_dim: int, context: int, hidden: int,
                 low: torch.Tensor, high: torch.Tensor):  # fmt: skip
        super().__init__()
        self.context = GRUContext(step_dim, context)
        self.mlp = _mlp([obs_dim + context, hidden, hidden, action_dim])
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def forward(self, obs: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, self.context(history)], -1)
        return torch.tanh(self.mlp(x)) * self.action_scale + self.action_bias


class ContextTwinCritic(nn.Module):
    """Q1, Q2 = MLPs(s, a, GRU(history)), one GRU for both."""

    def __init__(self, obs_dim: int, action_dim: int, step_dim: int, context: int, hidden: int):
        super().__init__()
        self.context = GRUContext(step_dim, context)
        self.q1 = _mlp([obs_dim + action_dim + context, hidden, hidden, 1])
        self.q2 = _mlp([obs_dim + action_dim + context, hidden, hidden, 1])

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, history: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action, self.context(history)], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def first(self, obs: torch.Tensor, action: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        return self.q1(torch.cat([obs, action, self.context(history)], -1)).squeeze(-1)
