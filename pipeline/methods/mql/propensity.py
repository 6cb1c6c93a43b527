"""MQL's covariate-shift correction: a logistic regression between a new task's contexts and the replay's.

Features x are the actor's context of each transition. Labels: -1 for the new task's snapshot, +1 for the
training replay (the reference's convention). The fit minimises C x sum log(1 + exp(-y f(x))) + ||w||^2 / 2
with f(x) = w.x + b (scikit-learn's LogisticRegression objective, which the reference calls, here with
torch's L-BFGS). The propensity weight of a replay transition is beta(x) = exp(-max(f(x), -clip)), about
p(new | x) / p(replay | x); weights below 0.1 are set to 0, as in the reference's `get_propensity`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

SMALL_WEIGHT = 0.1  # weights below this count as 0 (the reference's numerical-stability cut)


class Logistic(NamedTuple):
    weight: torch.Tensor  # [D]
    bias: torch.Tensor  # []
    accuracy: float  # on the data it was fitted to


def fit_logistic(new: torch.Tensor, replay: torch.Tensor, c: float, max_iter: int = 500) -> Logistic:
    """f separating `new` [N, D] (label -1) from `replay` [M, D] (label +1); deterministic (no randomness)."""
    x = torch.cat([new, replay]).double()
    y = torch.cat([-torch.ones(len(new)), torch.ones(len(replay))]).double()
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=max_iter, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        f = x @ w[:-1] + w[-1]
        loss = c * torch.nn.functional.softplus(-y * f).sum() + 0.5 * w[:-1].square().sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    weight, bias = w[:-1].detach().float(), w[-1].detach().float()
    accuracy = float(((x.float() @ weight + bias).sign() == y.float()).float().mean())
    return Logistic(weight, bias, accuracy)


def propensity(model: Logistic, features: torch.Tensor, clip: float) -> torch.Tensor:
    """beta [B] of replay transitions with context features [B, D]."""
    f = (features @ model.weight + model.bias).clamp_min(-clip)
    beta = torch.exp(-f)
    return torch.where(beta < SMALL_WEIGHT, torch.zeros_like(beta), beta)
