"""Contrastive loss on context embeddings (paper eq. 2; Hadsell, Chopra and LeCun 2006).

The push term is squared, as in Hadsell et al.'s loss; eq. 2 as printed shows it without the square.
"""

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


def task_contrastive_loss(z: torch.Tensor, partner: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Eq. 2 over the embeddings z [T, B, z_dim] of B windows from each of T tasks: the mean of the
    same-task term over the pairs (z[t, b], partner[t, b]) (`partner`: other windows of task t) and
    the different-task term over every pair of tasks, (z[t, b], z[u, b]) for all u != t, so that
    each task is pushed away from every other one, not from its neighbours in the task list alone."""
    if len(z) < 2:
        raise ValueError(f"task_contrastive_loss needs the windows of at least two tasks, got {len(z)}")
    same = contrastive_loss(z, partner, True, margin)
    others = torch.stack([z.roll(shift, dims=0) for shift in range(1, len(z))])  # [T - 1, T, B, z_dim]
    different = contrastive_loss(z.expand_as(others), others, False, margin)
    return (same + different) / 2
