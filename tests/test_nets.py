"""Ensemble networks: each member computes what a separate nn.Linear MLP with its weights computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.agents.nets import EnsembleMLP, EnsembleTwinCritic

SIZES = [7, 16, 16, 3]


def separate_mlp(ensemble: EnsembleMLP, member: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for layer, b in enumerate(ensemble.biases):
        w = ensemble.weight(layer)
        linear = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            linear.weight.copy_(w[member].T)
            linear.bias.copy_(b[member, 0])
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize("outputs", [3, 1])
def test_members_match_separate_mlps_outputs_and_gradients(outputs: int) -> None:
    ensemble = EnsembleMLP(3, [*SIZES[:-1], outputs])
    for m in range(3):
        ensemble.init_member(m, torch.Generator().manual_seed(m))
    x = torch.randn(3, 5, SIZES[0])
    out = ensemble(x)
    out.square().sum().backward()
    for m in range(3):
        mlp = separate_mlp(ensemble, m)
        ref = mlp(x[m])
        torch.testing.assert_close(out[m], ref)
        ref.square().sum().backward()
        for layer, linear in enumerate(mlp[::2]):
            w, b = ensemble.weights[layer], ensemble.biases[layer]
            w_grad = w.grad.transpose(1, 2) if layer == len(ensemble.weights) - 1 else w.grad  # [members, in, out]
            torch.testing.assert_close(w_grad[m], linear.weight.grad.T)
            torch.testing.assert_close(b.grad[m, 0], linear.bias.grad)


def test_member_init_depends_only_on_its_generator() -> None:
    a, b = EnsembleMLP(2, SIZES), EnsembleMLP(4, SIZES)
    a.init_member(1, torch.Generator().manual_seed(5))
    b.init_member(3, torch.Generator().manual_seed(5))
    assert all(torch.equal(p[1], q[3]) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    bound = 1 / SIZES[0] ** 0.5
    assert a.weights[0][1].abs().max() <= bound


def test_twin_critic_q1_is_the_first_of_each_pair() -> None:
    critic = EnsembleTwinCritic(seeds=2, in_dim=6, hidden=8)
    for m in range(4):
        critic.mlp.init_member(m, torch.Generator().manual_seed(m))
    x = torch.randn(2, 5, 6)
    both = critic(x)
    assert both.shape == (2, 2, 5)
    torch.testing.assert_close(critic.q1(x), both[:, 0])
    assert not torch.allclose(both[:, 0], both[:, 1])
