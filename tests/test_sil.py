"""SIL: Monte-Carlo returns, clipped advantages, the per-seed prioritized buffer, and the losses'
effect on TD3's actor and critics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.methods.mcat.sil import (
    SILBatch,
    SILBuffer,
    SILConfig,
    discounted_returns,
    sil_advantage,
    sil_losses,
)
from pipeline.schema import range_errors

pytestmark = pytest.mark.usefixtures("one_thread")

OBS, ACT, CTX = 4, 2, 3
CONFIG = SILConfig()


def make_agent(context_dim: int = 0, n_seeds: int = 1) -> TD3:
    return TD3(OBS, ACT, -np.ones(ACT), np.ones(ACT), TD3Config(hidden=32), context_dim=context_dim, n_seeds=n_seeds)


def episode(marker: float, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """obs[:, 0] = marker, obs[:, 1] = t; random actions; reward 1 per step."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(length, OBS))
    obs[:, 0], obs[:, 1] = marker, np.arange(length)
    return obs, rng.uniform(-1, 1, (length, ACT)), np.ones(length)


def values(agent: TD3, state: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return agent.critic(torch.cat([state, agent.actor(state)], -1)).min(1).values


def batch_for(agent: TD3, returns: torch.Tensor, seed: int = 0, context: bool = False) -> SILBatch:
    """A hand-made batch of K = agent.n_seeds, B = returns.shape[1]."""
    k, b = returns.shape
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randn(k, b, CTX, generator=g) if context else None
    return SILBatch(
        torch.randn(k, b, OBS, generator=g),
        torch.rand(k, b, ACT, generator=g) * 2 - 1,
        ctx,
        returns,
        torch.ones(k, b),
        torch.zeros(k, b, dtype=torch.long),
    )


def test_discounted_returns_by_hand() -> None:
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 2.0, 3.0]), 1.0), [6.0, 5.0, 3.0])
    np.testing.assert_allclose(discounted_returns(np.array([4.0, 1.0]), 0.0), [4.0, 1.0])


def test_advantage_is_zero_below_value_and_clipped_at_one_above() -> None:
    returns = torch.tensor([0.0, 1.0, 5.0, 0.5, -3.0])
    value = torch.tensor([1.0, 1.0, 0.0, 0.0, -3.2])
    torch.testing.assert_close(sil_advantage(returns, value), torch.tensor([0.0, 0.0, 1.0, 0.5, 0.2]))


def test_config_fields_are_all_bounded() -> None:
    assert range_errors(SILConfig()) == []
    bad = SILConfig(
        capacity=0, batch_size=0, alpha=0.0, beta=1.5, value_weight=-1, actor_weight=-1, updates_per_step=-1
    )
    assert len(range_errors(bad)) == 7


def test_each_seed_samples_only_its_own_episodes() -> None:
    buffer = SILBuffer(OBS, ACT, capacity=50, n_seeds=2)
    for k, marker in enumerate((10.0, 20.0)):
        for e in range(2):
            obs, actions, rewards = episode(marker + e, 5, seed=3 * k + e)
            buffer.add_episode(k, obs, actions, rewards, discount=0.5)
    batch = buffer.sample(200)
    assert batch.obs.shape == (2, 200, OBS) and batch.action.shape == (2, 200, ACT) and batch.context is None
    assert set(batch.obs[0, :, 0].tolist()) == {10.0, 11.0}
    assert set(batch.obs[1, :, 0].tolist()) == {20.0, 21.0}
    # each sampled row's return is its own step's: 5 rewards of 1, discount 0.5
    expected = torch.as_tensor(discounted_returns(np.ones(5), 0.5), dtype=torch.float32)
    torch.testing.assert_close(batch.returns, expected[batch.obs[..., 1].long()])


def test_sampling_follows_priorities_per_seed_and_weights_are_normalized() -> None:
    adv = torch.tensor([[0.05, 0.1, 0.5, 1.0], [1.0, 0.5, 0.1, 0.05]])
    buffer = SILBuffer(OBS, ACT, capacity=10, n_seeds=2, alpha=0.6, beta=0.1, seed=7)
    for k in range(2):
        buffer.add_episode(k, *episode(k, 4), discount=0.9)
    buffer.update_priorities(torch.arange(4).repeat(2, 1), adv)
    n = 40_000
    batch = buffer.sample(n)
    priority = (adv + 1e-6) ** 0.6
    expected = priority / priority.sum(-1, keepdim=True)
    counts = torch.stack([torch.bincount(batch.indices[k], minlength=4) for k in range(2)]) / n
    torch.testing.assert_close(counts, expected, atol=0.01, rtol=0)
    # (N P)^-beta divided by the largest such weight: 1 at the lowest priority, below it elsewhere
    weight = (4 * expected) ** -0.1
    weight = weight / weight.max(-1, keepdim=True).values
    torch.testing.assert_close(batch.weights, torch.gather(weight, 1, batch.indices))
    assert batch.weights.max() <= 1.0
    assert batch.weights.max(-1).values.tolist() == [1.0, 1.0]
    assert (batch.weights < 1).any()


def test_new_episodes_get_the_largest_priority() -> None:
    buffer = SILBuffer(OBS, ACT, capacity=10)
    buffer.add_episode(0, *episode(1.0, 4), discount=0.9)
    buffer.update_priorities(torch.arange(4).unsqueeze(0), torch.zeros(1, 4))
    buffer.add_episode(0, *episode(2.0, 2), discount=0.9)
    batch = buffer.sample(100)
    assert (batch.obs[0, :, 0] == 2.0).all()


def test_capacity_evicts_oldest_episodes() -> None:
    buffer = SILBuffer(OBS, ACT, capacity=10)
    for marker in (0.0, 1.0, 2.0):
        buffer.add_episode(0, *episode(marker, 5), discount=0.9)
    assert buffer.sizes == [10]
    assert set(buffer.sample(500).obs[0, :, 0].tolist()) == {1.0, 2.0}
    buffer.add_episode(0, *episode(3.0, 12), discount=0.9)  # longer than capacity: its last 10 steps
    batch = buffer.sample(500)
    assert set(batch.obs[0, :, 0].tolist()) == {3.0}
    assert set(batch.obs[0, :, 1].tolist()) == set(range(2, 12))


def test_same_seed_gives_identical_samples() -> None:
    def sampled(seed: int) -> SILBatch:
        buffer = SILBuffer(OBS, ACT, capacity=20, seed=seed, n_seeds=2)
        for k in range(2):
            buffer.add_episode(k, *episode(k, 15), discount=0.9)
        return buffer.sample(32)

    a, b, c = sampled(0), sampled(0), sampled(1)
    for x, y in zip(a, b, strict=True):
        assert (x is None and y is None) or torch.equal(x, y)
    assert not torch.equal(a.indices, c.indices)


def test_critic_loss_is_zero_when_returns_do_not_exceed_q_and_pushes_q_up_otherwise() -> None:
    torch.manual_seed(0)
    agent = make_agent(n_seeds=2)
    batch = batch_for(agent, torch.zeros(2, 16))
    with torch.no_grad():
        q = agent.critic(torch.cat([batch.obs, batch.action], -1))  # [K, 2, B]
    below = batch._replace(returns=q.min(1).values - 0.1)
    _, critic_loss, _ = sil_losses(agent, below, CONFIG)
    assert critic_loss.item() == 0.0

    above = batch._replace(returns=q.max(1).values + 2.0, weights=torch.rand(2, 16))
    _, critic_loss, _ = sil_losses(agent, above, CONFIG)
    expected = CONFIG.value_weight * (above.weights.unsqueeze(1) * (above.returns.unsqueeze(1) - q) ** 2 / 2)
    torch.testing.assert_close(critic_loss, expected.mean(-1).sum())

    critic_loss.backward()
    assert all(p.grad is None for p in agent.actor.parameters())  # the critic term trains critics only
    with torch.no_grad():
        for p in agent.critic.parameters():
            p -= 0.05 * p.grad
        assert (agent.critic(torch.cat([batch.obs, batch.action], -1)) > q).all()


def test_advantage_uses_the_smaller_twin_value_of_the_policy_action() -> None:
    torch.manual_seed(0)
    agent = make_agent(n_seeds=2)
    batch = batch_for(agent, torch.zeros(2, 16))
    with torch.no_grad():
        twins = agent.critic(torch.cat([batch.obs, agent.actor(batch.obs)], -1))  # [K, 2, B]
    low, high = twins.min(1).values, twins.max(1).values
    assert (high - low > 1e-4).all()
    between = batch._replace(returns=(low + high) / 2)  # above min Q, below max Q
    advantages = sil_losses(agent, between, CONFIG)[2]
    torch.testing.assert_close(advantages, ((high - low) / 2).clamp(max=1))


def test_actor_moves_toward_positive_advantage_actions_and_ignores_the_rest() -> None:
    torch.manual_seed(0)
    agent = make_agent()
    batch = batch_for(agent, torch.zeros(1, 32), seed=1)
    v = values(agent, batch.obs)
    good = torch.arange(32) < 16
    batch = batch._replace(returns=torch.where(good, v + 5.0, v - 5.0))
    adv = sil_losses(agent, batch, CONFIG)[2]
    assert (adv[0, good] == 1).all() and (adv[0, ~good] == 0).all()

    def actor_grads(b: SILBatch) -> list[torch.Tensor]:
        agent.actor.zero_grad(set_to_none=True)
        sil_losses(agent, b, CONFIG)[0].backward()
        return [p.grad.clone() for p in agent.actor.parameters()]

    # the zero-advantage rows' actions do not matter
    moved = batch._replace(action=torch.where(good[:, None], batch.action, -batch.action))
    for x, y in zip(actor_grads(batch), actor_grads(moved), strict=True):
        torch.testing.assert_close(x, y)
    assert all(p.grad is None for p in agent.critic.parameters())  # V takes no gradient

    def distance() -> torch.Tensor:
        with torch.no_grad():
            return (agent.actor(batch.obs) - batch.action).square().sum(-1)[0, good]

    before = distance()
    optimizer = torch.optim.SGD(agent.actor.parameters(), lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        sil_losses(agent, batch, CONFIG)[0].backward()
        optimizer.step()
    assert distance().mean() < 0.5 * before.mean()


def test_losses_give_each_seed_its_own_gradient() -> None:
    torch.manual_seed(0)
    agent = make_agent(n_seeds=2)
    batch = batch_for(agent, torch.full((2, 16), 50.0))

    def seed0_grads(b: SILBatch) -> list[torch.Tensor]:
        for net in (agent.actor, agent.critic):
            net.zero_grad(set_to_none=True)
        actor_loss, critic_loss, _ = sil_losses(agent, b, CONFIG)
        (actor_loss + critic_loss).backward()
        # members: actor seed 0 is row 0, critic seed 0 are rows 0 and 1
        return [p.grad[0].clone() for p in agent.actor.parameters()] + [
            p.grad[:2].clone() for p in agent.critic.parameters()
        ]

    other = batch._replace(obs=batch.obs.clone(), returns=batch.returns.clone())
    other.obs[1] += 1.0
    other.returns[1] = 100.0
    for x, y in zip(seed0_grads(batch), seed0_grads(other), strict=True):
        torch.testing.assert_close(x, y)


def test_context_conditioned_agent_and_buffer() -> None:
    torch.manual_seed(0)
    agent = make_agent(context_dim=CTX, n_seeds=2)
    buffer = SILBuffer(OBS, ACT, capacity=30, context_dim=CTX, n_seeds=2)
    with pytest.raises(ValueError, match="context"):
        buffer.add_episode(0, *episode(0.0, 5), discount=0.99)
    for k in range(2):
        obs, actions, rewards = episode(k, 10)
        buffer.add_episode(k, obs, actions, 100 * rewards, 0.99, contexts=np.full((10, CTX), k, dtype=np.float32))
    batch = buffer.sample(8)
    assert batch.context is not None and batch.context.shape == (2, 8, CTX)
    assert (batch.context[0] == 0).all() and (batch.context[1] == 1).all()
    actor_loss, critic_loss, adv = sil_losses(agent, batch, CONFIG)
    assert actor_loss.item() > 0 and critic_loss.item() > 0 and adv.shape == (2, 8)
    (actor_loss + critic_loss).backward()
    buffer.update_priorities(batch.indices, adv)
    with pytest.raises(ValueError, match="context"):
        sil_losses(agent, batch._replace(context=None), CONFIG)


def test_encoded_contexts_match_encoding_afresh_and_follow_refresh_and_overwrites() -> None:
    buffer = SILBuffer(OBS, ACT, capacity=12, context_dim=CTX, n_seeds=2, seed=1, z_dim=CTX)
    twin = SILBuffer(OBS, ACT, capacity=12, context_dim=CTX, n_seeds=2, seed=1)
    double = [lambda c: 2 * c, lambda c: 3 * c]
    for n in range(4):  # 4 episodes of 5 into 12 rows: the last ones overwrite cached rows
        for k in range(2):
            obs, actions, rewards = episode(k, 5, seed=n)
            contexts = np.random.default_rng([n, k]).normal(size=(5, CTX)).astype(np.float32)
            for b in (buffer, twin):
                b.add_episode(k, obs, actions, rewards, 0.99, contexts=contexts)
        encoded, fresh = buffer.sample(8, double), twin.sample(8)
        assert torch.equal(encoded.indices, fresh.indices)
        assert torch.equal(encoded.context, torch.stack([2 * fresh.context[0], 3 * fresh.context[1]]))
    buffer.refresh_contexts([lambda c: -c, lambda c: c])
    encoded, fresh = buffer.sample(8, double), twin.sample(8)
    assert torch.equal(encoded.context, torch.stack([-fresh.context[0], fresh.context[1]]))
    with pytest.raises(ValueError, match="z_dim"):
        twin.sample(8, double)
