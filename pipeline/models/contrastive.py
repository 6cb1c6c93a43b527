"""Contrastive loss on context embeddings (paper eq. 2; Hadsell, Chopra and LeCun 2006)."""

from __future__ import annotations

import torch


def contrastive_loss(
    z_a: torch.Tensor, z_b: torch.Tensor, same_task: torch.Tensor | bool, margin: float = 1.0
) -> torch.Tensor:
    """Mean over pairs (z_a[i], z_b[i]) of d² for same-task pairs and max(0, margin - d)² otherwise,
    d the Euclidean distance. `same_task` is a bool tensor broadcastable to the pair dimensions."""
    diff = z_a - z_b
    squared = diff.square().sum(-1)
    distance = torch.linalg.vector_norm(diff, dim=-1)  # its gradient at d = 0 is 0, not NaN
    push = (margin - distance).clamp_min(0).square()
    same = torch.as_tensor(same_task, dtype=torch.bool, device=squared.device)
    return torch.where(same, squared, push).mean()
