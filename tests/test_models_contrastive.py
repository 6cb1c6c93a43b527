"""Contrastive loss (eq. 2): zero where it should be, positive where it should be, and its gradient."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.contrastive import contrastive_loss, task_contrastive_loss


def pair(distance: float) -> tuple[torch.Tensor, torch.Tensor]:
    z_a = torch.tensor([[0.5, -1.0, 2.0]])
    direction = torch.nn.functional.normalize(torch.tensor([[1.0, 2.0, -2.0]]), dim=-1)
    return z_a, z_a + distance * direction


def test_zero_for_identical_same_task_embeddings() -> None:
    z = torch.randn(8, 10)
    assert contrastive_loss(z, z.clone(), torch.ones(8, dtype=torch.bool)).item() == 0.0


def test_zero_for_different_tasks_beyond_the_margin() -> None:
    z_a, z_b = pair(1.5)
    assert contrastive_loss(z_a, z_b, torch.tensor([False]), margin=1.0).item() == 0.0
    z_a, z_b = torch.zeros(4, 10), torch.full((4, 10), 2.0)
    assert contrastive_loss(z_a, z_b, False, margin=1.0).item() == 0.0


def test_values_for_pairs_that_violate_eq_2() -> None:
    z_a, z_b = pair(0.5)
    torch.testing.assert_close(contrastive_loss(z_a, z_b, torch.tensor([True])), torch.tensor(0.25))
    torch.testing.assert_close(contrastive_loss(z_a, z_b, torch.tensor([False]), margin=2.0), torch.tensor(2.25))
    far_a, far_b = pair(3.0)
    both_a, both_b = torch.cat([z_a, far_a]), torch.cat([z_b, far_b])
    # same-task 0.5 apart: 0.25; different-task 3 apart, margin 1: 0; mean over the two pairs
    torch.testing.assert_close(contrastive_loss(both_a, both_b, torch.tensor([True, False])), torch.tensor(0.125))


def test_different_task_pair_at_zero_distance_has_a_finite_gradient() -> None:
    z_a = torch.zeros(2, 4, requires_grad=True)
    loss = contrastive_loss(z_a, torch.zeros(2, 4), torch.tensor([False, False]))
    loss.backward()
    assert loss.item() == 1.0
    assert torch.isfinite(z_a.grad).all()


def test_sgd_step_pushes_different_tasks_apart_and_pulls_same_task_together() -> None:
    for same, moves_apart in ((False, True), (True, False)):
        z_a, z_b = (z.clone().requires_grad_(True) for z in pair(0.4))
        before = (z_a - z_b).norm().item()
        contrastive_loss(z_a, z_b, torch.tensor([same])).backward()
        with torch.no_grad():
            for z in (z_a, z_b):
                z -= 0.1 * z.grad
        after = (z_a - z_b).norm().item()
        assert (after > before) == moves_apart, (same, before, after)


def test_task_loss_pushes_every_pair_of_tasks_not_only_neighbours_in_the_list() -> None:
    # 4 tasks, one window each: tasks 0 and 2 collapsed onto one point, every other pair far apart
    z = torch.tensor([[[0.0, 0.0]], [[5.0, 0.0]], [[0.0, 0.0]], [[0.0, 5.0]]])
    # 12 ordered pairs of different tasks, two of them (0, 2) and (2, 0) at distance 0: push 1 each
    torch.testing.assert_close(task_contrastive_loss(z, z, margin=1.0), torch.tensor((0.0 + 2 / 12) / 2))
    z_near = torch.tensor([[[0.0, 0.0]], [[5.0, 0.0]], [[0.3, 0.0]], [[0.0, 5.0]]], requires_grad=True)
    task_contrastive_loss(z_near, z_near.detach()).backward()
    assert z_near.grad[0, 0, 0] > 0 and z_near.grad[2, 0, 0] < 0  # gradient descent moves 0 and 2 apart


def test_task_loss_pulls_windows_of_one_task_together() -> None:
    z = torch.tensor([[[0.0, 0.0]], [[5.0, 5.0]]])
    partner = z + torch.tensor([0.5, 0.0])
    torch.testing.assert_close(task_contrastive_loss(z, partner), torch.tensor((0.25 + 0.0) / 2))


def test_task_loss_needs_two_tasks() -> None:
    with pytest.raises(ValueError, match="at least two tasks, got 1"):
        task_contrastive_loss(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3))
