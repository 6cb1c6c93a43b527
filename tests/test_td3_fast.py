"""td3.fast: the fast update (pipeline/agents/fast) is the plain autograd + torch.optim update, to float rounding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.agents.fast.backward import mlp_forward_saving, mlp_gradients, set_gradients
from pipeline.agents.nets import Q1_MEMBERS, EnsembleMLP, EnsembleTwinCritic
from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import Precision, TD3Config
from pipeline.data.replay import ReplayBuffer

OBS, ACT, CTX = 5, 2, 3
CONFIG = TD3Config(hidden=32, batch_size=16)
PLAIN = dataclasses.replace(CONFIG, fast=False)
SIZES = [7, 16, 16, 3]


def make_agent(config: TD3Config, context_dim: int = 0, n_seeds: int = 1) -> TD3:
    return TD3(OBS, ACT, -np.ones(ACT), 2 * np.ones(ACT), config, context_dim=context_dim, n_seeds=n_seeds)


def filled_buffer(n_seeds: int) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(OBS, ACT, capacity=200, seed=0, n_seeds=n_seeds)
    for _ in range(200):
        buffer.add(rng.normal(size=(n_seeds, OBS)), rng.uniform(-1, 2, (n_seeds, ACT)), rng.normal(size=n_seeds),
                   rng.normal(size=(n_seeds, OBS)), rng.random(n_seeds) < 0.1)  # fmt: skip
    return buffer


def parameters(agent: TD3) -> list[torch.Tensor]:
    return [p.detach().clone() for _, p in agent.named_parameters()]


def assert_same_agents(mine: TD3, theirs: TD3, rtol: float, atol: float, moments_rtol: float) -> None:
    for a, b in zip(parameters(mine), parameters(theirs), strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    for name in ("actor_optimizer", "critic_optimizer"):
        ours, plain = getattr(mine, name).state_dict()["state"], getattr(theirs, name).state_dict()["state"]
        assert ours.keys() == plain.keys()
        for i in ours:
            for key in ours[i]:  # the second moment's smallest entries carry the most relative rounding
                torch.testing.assert_close(ours[i][key], plain[i][key], rtol=moments_rtol, atol=1e-9)


def train_both(fast: TD3, plain: TD3, updates: int, batch_size: int, context_dim: int) -> None:
    buffer, contexts = filled_buffer(fast.n_seeds), torch.Generator().manual_seed(0)
    for _ in range(updates):
        batch = buffer.sample(batch_size)
        if context_dim:
            context, next_context = torch.randn(2, fast.n_seeds, batch_size, context_dim, generator=contexts)
            batch = batch._replace(context=context, next_context=next_context)
        fast.train(batch)
        plain.train(batch)
        assert fast.last_losses.keys() == plain.last_losses.keys()
        for k in fast.last_losses:
            torch.testing.assert_close(fast.last_losses[k], plain.last_losses[k], rtol=1e-5, atol=1e-6)


def test_the_switch_picks_the_update() -> None:
    assert TD3Config().fast
    assert make_agent(CONFIG)._fast is not None and make_agent(PLAIN)._fast is None


@pytest.mark.parametrize(("context_dim", "n_seeds"), [(0, 1), (CTX, 2)])
def test_one_fast_update_is_the_plain_update(context_dim: int, n_seeds: int) -> None:
    """policy_freq 1: one update moves critics, actors and targets; from the same state they agree to rounding."""
    config = dataclasses.replace(CONFIG, policy_freq=1)
    fast, plain = make_agent(config, context_dim, n_seeds), make_agent(dataclasses.replace(config, fast=False),
                                                                        context_dim, n_seeds)  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(parameters(fast), parameters(plain), strict=True))
    train_both(fast, plain, 1, 16, context_dim)
    assert fast.last_losses.keys() == {"critic", "actor"}
    assert_same_agents(fast, plain, rtol=1e-6, atol=1e-7, moments_rtol=1e-5)


@pytest.mark.parametrize(("context_dim", "n_seeds", "batch_size"), [(0, 1, 16), (CTX, 2, 16), (0, 3, 12)])
def test_fast_updates_are_the_plain_updates(context_dim: int, n_seeds: int, batch_size: int) -> None:
    fast, plain = make_agent(CONFIG, context_dim, n_seeds), make_agent(PLAIN, context_dim, n_seeds)
    train_both(fast, plain, 8, batch_size, context_dim)  # critic-only and actor updates
    assert not all(torch.equal(a, b) for a, b in zip(parameters(fast), parameters(make_agent(CONFIG)), strict=True))
    assert_same_agents(fast, plain, rtol=1e-4, atol=1e-5, moments_rtol=1e-4)


def test_fast_bf16_updates_are_the_plain_bf16_updates() -> None:
    """bf16 goes through autograd either way; the fast update differs only in its Adam step."""
    bf16 = dataclasses.replace(CONFIG, precision=Precision.bf16)
    fast, plain = make_agent(bf16, n_seeds=2), make_agent(dataclasses.replace(bf16, fast=False), n_seeds=2)
    train_both(fast, plain, 4, 16, 0)
    assert_same_agents(fast, plain, rtol=1e-5, atol=1e-6, moments_rtol=1e-4)


def test_step_optimizers_is_the_same_either_way() -> None:
    """The step MetaTrainer's self-imitation updates take: bitwise torch.optim's, with the switch on or off."""
    agents = make_agent(CONFIG, n_seeds=2), make_agent(PLAIN, n_seeds=2)
    x = torch.randn(2, 8, OBS, generator=torch.Generator().manual_seed(1))
    for _ in range(3):  # the first step creates the optimizers' state
        for agent in agents:
            agent.critic_optimizer.zero_grad()
            agent.actor_optimizer.zero_grad()
            (agent.critic(torch.cat([x, agent.actor(x)], -1)).square().mean()).backward()
            agent.step_optimizers()
    assert_same_agents(*agents, rtol=0, atol=0, moments_rtol=0)


def test_plain_agent_never_runs_fast_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        pytest.fail("the plain update ran fast code")

    monkeypatch.setattr("pipeline.agents.td3.fused_adam_step", fail)
    monkeypatch.setattr("pipeline.agents.fast.update.FastUpdate.update", fail)
    agent, buffer = make_agent(PLAIN), filled_buffer(1)
    for _ in range(2):
        agent.train(buffer.sample(16))
    agent.step_optimizers()


def grads(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("outputs", [3, 1])
def test_gradients_by_hand_are_autograds(outputs: int) -> None:
    ensemble = EnsembleMLP(3, [*SIZES[:-1], outputs])
    for m in range(3):
        ensemble.init_member(m, torch.Generator().manual_seed(m))
    x, grad_out = torch.randn(3, 5, SIZES[0]), torch.randn(3, 5, outputs)
    x_autograd = x.clone().requires_grad_(True)
    ensemble(x_autograd).backward(grad_out)
    reference = grads(ensemble)
    out, inputs = mlp_forward_saving(ensemble, x)
    assert torch.equal(out, ensemble(x))
    gradients = mlp_gradients(ensemble, inputs, grad_out, input_grad=True)
    ensemble.zero_grad(set_to_none=True)
    set_gradients(ensemble, gradients)
    for mine, theirs in zip(grads(ensemble), reference, strict=True):
        assert mine.shape == theirs.shape
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gradients.input, x_autograd.grad, rtol=1e-6, atol=1e-6)


def test_gradients_of_a_member_subset_are_the_input_gradient_only() -> None:
    critic = EnsembleTwinCritic(seeds=2, in_dim=6, hidden=8)
    for m in range(4):
        critic.mlp.init_member(m, torch.Generator().manual_seed(m))
    x = torch.randn(2, 5, 6, requires_grad=True)
    critic.q1(x).sum().backward()
    q1, inputs = mlp_forward_saving(critic.mlp, x.detach(), Q1_MEMBERS)
    assert torch.equal(q1.squeeze(-1), critic.q1(x))
    gradients = mlp_gradients(critic.mlp, inputs, torch.ones_like(q1), members=Q1_MEMBERS, weight_grads=False,
                              input_grad=True)  # fmt: skip
    assert gradients.weights is None and gradients.biases is None
    torch.testing.assert_close(gradients.input, x.grad, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="weight gradients need all members"):
        mlp_gradients(critic.mlp, inputs, torch.ones_like(q1), members=Q1_MEMBERS)
    with pytest.raises(ValueError, match="no weight gradients"):
        set_gradients(critic.mlp, gradients)
