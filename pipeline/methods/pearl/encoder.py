"""PEARL's context encoder for K seeds at once: transitions of a task -> a Gaussian posterior over z.

Each context transition c_n gives a Gaussian factor N(mu_n, sigma_n^2) (an MLP with a softplus variance);
the posterior is their product, q(z | c_1..N) ∝ prod_n N(mu_n, sigma_n^2), which does not depend on the
transitions' order (Rakelly et al. 2019, Sec. 4.1; oyster `PEARLAgent.infer_posterior`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.agents.nets import EnsembleMLP
from pipeline.seeding import stream_generator

MIN_VARIANCE = 1e-7  # oyster's clamp of each factor's variance


class ContextEncoder(nn.Module):
    """K seeds' encoders: contexts [K, ..., N, context_dim] -> posterior mean and variance [K, ..., latent]."""

    def __init__(self, seeds: int, context_dim: int, latent_dim: int, hidden: int, layers: int, seed: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        self.mlp = EnsembleMLP(seeds, [context_dim, *[hidden] * layers, 2 * latent_dim])
        for k in range(seeds):
            self.mlp.init_member(k, stream_generator(seed + k, "pearl.encoder_init"))

    def forward(self, context: torch.Tensor, members: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The product of the N factors of each context: (mean, variance), each [K, ..., latent]. `members`:
        only those seeds' encoders (context [len(members), ...]), e.g. slice(k, k + 1) for seed k alone."""
        k, *lead, n, d = context.shape
        out = self.mlp.forward_members(context.reshape(k, -1, d), members).reshape(k, *lead, n, 2 * self.latent_dim)
        mu, raw = out.chunk(2, dim=-1)
        precision = 1.0 / F.softplus(raw).clamp_min(MIN_VARIANCE)
        variance = 1.0 / precision.sum(-2)
        return variance * (mu * precision).sum(-2), variance


def kl_to_standard_normal(mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, variance) || N(0, I)) summed over the latent dimension: [..., latent] -> [...]."""
    return 0.5 * (variance + mean.square() - 1.0 - variance.log()).sum(-1)
