"""TD3: checkpoints round-trip exactly, seeding is reproducible, K batched seeds are K runs."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.agents.td3 import TD3, stack_seeds
from pipeline.agents.td3_config import Precision, TD3Config
from pipeline.data.replay import ReplayBuffer

OBS, ACT, CTX = 5, 2, 3
CONFIG = TD3Config(hidden=32, batch_size=16)


def make_agent(seed: int = 0, context_dim: int = 0, n_seeds: int = 1) -> TD3:
    return TD3(OBS, ACT, -np.ones(ACT), 2 * np.ones(ACT), CONFIG, context_dim=context_dim, seed=seed, n_seeds=n_seeds)


def transitions(seed: int, n: int = 200) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=OBS), rng.uniform(-1, 2, ACT), rng.normal(), rng.normal(size=OBS), rng.random() < 0.1)
        for _ in range(n)
    ]


def filled_buffer(seed: int = 0, n_seeds: int = 1) -> ReplayBuffer:
    """Seed k's rows are `transitions(seed + k)`, as a 1-seed buffer with seed `seed + k` holds."""
    buffer = ReplayBuffer(OBS, ACT, capacity=200, seed=seed, n_seeds=n_seeds)
    per_seed = [transitions(seed + k) for k in range(n_seeds)]
    for rows in zip(*per_seed, strict=True):
        buffer.add(*(np.stack([np.asarray(r[field]) for r in rows]) for field in range(5)))
    return buffer


def train_steps(agent: TD3, buffer: ReplayBuffer, n: int) -> None:
    for _ in range(n):
        agent.train(buffer.sample(CONFIG.batch_size))


def parameters(agent: TD3) -> list[torch.Tensor]:
    nets = (agent.actor, agent.critic, agent.actor_target, agent.critic_target)
    return [p.detach().clone() for net in nets for p in net.parameters()]


def all_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_actions_respect_asymmetric_bounds() -> None:
    agent = make_agent()
    actions = agent.act(torch.randn(1, 1000, OBS) * 100)
    assert actions.shape == (1, 1000, ACT)
    assert actions.min() >= -1 and actions.max() <= 2
    assert agent.select_action(np.zeros(OBS, dtype=np.float32)).shape == (ACT,)
    assert make_agent(n_seeds=3).select_action(np.zeros((3, OBS))).shape == (3, ACT)


def test_same_seed_same_training_different_seed_differs() -> None:
    runs = []
    for seed in (0, 0, 1):
        agent = make_agent(seed)
        train_steps(agent, filled_buffer(seed), 7)
        runs.append(parameters(agent))
    assert all_equal(runs[0], runs[1])
    assert not all_equal(runs[0], runs[2])


def test_training_changes_actor_every_policy_freq_updates() -> None:
    agent, buffer = make_agent(), filled_buffer()
    before = [p.clone() for p in agent.actor.parameters()]
    train_steps(agent, buffer, 1)  # critic only
    assert all_equal(before, list(agent.actor.parameters()))
    train_steps(agent, buffer, 1)  # now the actor and targets too
    assert not all_equal(before, list(agent.actor.parameters()))
    assert agent.total_it == 2


def test_seed_k_of_a_batched_agent_is_the_single_run_with_seed_k() -> None:
    """Nothing is shared across the seed dimension: init, sampling, noise, optimizer state."""
    k_seeds, base = 3, 10
    batched, batched_buffer = make_agent(base, n_seeds=k_seeds), filled_buffer(base, k_seeds)
    train_steps(batched, batched_buffer, 9)
    obs = torch.randn(1, 4, OBS)
    for k in range(k_seeds):
        single = make_agent(base + k)
        train_steps(single, filled_buffer(base + k), 9)
        for mine, theirs in zip(parameters(batched), parameters(single), strict=True):
            is_critic = mine.shape[0] == 2 * k_seeds  # critic members 2k, 2k+1 are seed k's
            members = slice(2 * k, 2 * k + 2) if is_critic else slice(k, k + 1)
            torch.testing.assert_close(mine[members], theirs, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.act(obs.expand(k_seeds, -1, -1))[k], single.act(obs)[0])


def test_stacked_single_seed_agents_continue_like_the_batched_agent() -> None:
    """Seeds trained one at a time, stacked (weights, Adam moments, noise generators), then trained on as
    one batched agent: the same as training batched all along."""
    k_seeds, base = 2, 20
    batched, batched_buffer = make_agent(base, n_seeds=k_seeds), filled_buffer(base, k_seeds)
    train_steps(batched, batched_buffer, 5)
    singles = [make_agent(base + k) for k in range(k_seeds)]
    for k, agent in enumerate(singles):
        train_steps(agent, filled_buffer(base + k), 5)
    stacked = stack_seeds(singles)
    assert stacked.n_seeds == k_seeds and stacked.total_it == 5
    torch.testing.assert_close(stacked.actor.action_bias, batched.actor.action_bias)
    for mine, theirs in zip(parameters(stacked), parameters(batched), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    train_steps(stacked, batched_buffer, 3)  # Adam's moments and the noise generators carried over
    reference = make_agent(base, n_seeds=k_seeds)
    train_steps(reference, filled_buffer(base, k_seeds), 8)  # the same 8 batches
    for mine, theirs in zip(parameters(stacked), parameters(reference), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_stack_seeds_rejects_mismatched_agents() -> None:
    agent = make_agent(0)
    train_steps(agent, filled_buffer(0), 1)
    with pytest.raises(ValueError, match="update count"):
        stack_seeds([agent, make_agent(1)])
    other = make_agent(1)
    train_steps(other, filled_buffer(1), 1)
    other.critic_optimizer.step()  # an extra optimizer step (e.g. a self-imitation update) at the same update count
    with pytest.raises(ValueError, match="critic_optimizer took different numbers of steps"):
        stack_seeds([agent, other])


def test_batched_seeds_get_their_own_gradients() -> None:
    """The summed loss gives each member the gradient it gets alone: zeroing one seed's data moves only that seed."""
    agent = make_agent(n_seeds=2)
    batch = filled_buffer(n_seeds=2).sample(CONFIG.batch_size)
    state = torch.cat([batch.obs, batch.action], -1)
    q = agent.critic(state)
    q[1].sum().backward()  # a loss of seed 1 only
    for p in agent.critic.parameters():
        assert torch.count_nonzero(p.grad[:2]) == 0 and torch.count_nonzero(p.grad[2:]) > 0


@pytest.mark.parametrize(("context_dim", "n_seeds"), [(0, 1), (CTX, 1), (CTX, 2)])
def test_save_load_gives_identical_actions_and_next_update(tmp_path: Path, context_dim: int, n_seeds: int) -> None:
    agent, buffer = make_agent(context_dim=context_dim, n_seeds=n_seeds), filled_buffer(n_seeds=n_seeds)
    ctx = torch.randn(n_seeds, CONFIG.batch_size, context_dim) if context_dim else None

    def update(a: TD3) -> None:
        a.train(buffer.sample(CONFIG.batch_size)._replace(context=ctx, next_context=ctx))

    for _ in range(5):
        update(agent)
    path = tmp_path / "td3.pt"
    agent.save(path)
    restored = make_agent(seed=99, context_dim=context_dim, n_seeds=n_seeds)  # other init, overwritten by load
    restored.load(path)
    assert restored.total_it == agent.total_it == 5

    obs = torch.randn(n_seeds, 8, OBS)
    obs_ctx = torch.randn(n_seeds, 8, context_dim) if context_dim else None
    assert torch.equal(agent.act(obs, obs_ctx), restored.act(obs, obs_ctx))

    sampler_state = [g.get_state() for g in buffer.generators]
    update(agent)
    for g, s in zip(buffer.generators, sampler_state, strict=True):
        g.set_state(s)
    update(restored)
    assert all_equal(parameters(agent), parameters(restored))


def test_loading_another_agents_state_shares_nothing_with_it() -> None:
    """Training the agent a state came from leaves the loaded agent as it was (torch's optimizer
    load_state_dict alone would keep the given moment and step tensors and step them twice)."""
    source, loaded, buffer = make_agent(), make_agent(seed=1), filled_buffer()
    train_steps(source, buffer, 2)
    loaded.load_state_dict(source.state_dict())
    before = copy.deepcopy((loaded.state_dict(), parameters(loaded)))
    train_steps(source, buffer, 2)
    after = loaded.state_dict(), parameters(loaded)
    assert all_equal(after[1], before[1])
    for name in ("actor_optimizer", "critic_optimizer"):
        for index, moments in before[0][name]["state"].items():
            for key, value in moments.items():
                assert torch.equal(after[0][name]["state"][index][key], value), (name, index, key)


def test_load_rejects_other_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "td3.pt"
    make_agent(context_dim=CTX).save(path)
    with pytest.raises(ValueError, match="dims"):
        make_agent(context_dim=0).load(path)
    with pytest.raises(ValueError, match="dims"):
        make_agent(context_dim=CTX, n_seeds=2).load(path)


def test_context_agent_requires_context() -> None:
    with pytest.raises(ValueError, match="context"):
        make_agent(context_dim=CTX).act(torch.zeros(1, 1, OBS))


@pytest.mark.parametrize(
    ("option", "tolerance"),
    [({"precision": Precision.bf16}, 0.2), ({"compile": True}, 1e-4), ({"compile": True, "fast": False}, 1e-4)],
    ids=["bf16", "compile", "plain+compile"],
)
def test_speed_options_compute_the_same_update(option: dict, tolerance: float) -> None:
    """bf16 autocast and torch.compile change how the update is computed, not what it computes: the
    weights' change over 4 updates (~1e-3 at lr 3e-4, so compared as a change, not as weights) agrees
    to `tolerance` of its norm (bf16 measured 0.07; an update that does nothing is 1)."""

    def change(config: TD3Config) -> torch.Tensor:
        agent = TD3(OBS, ACT, -np.ones(ACT), 2 * np.ones(ACT), config, seed=0, n_seeds=2)
        before = parameters(agent)
        train_steps(agent, filled_buffer(n_seeds=2), 4)
        return torch.cat([(after - b).flatten() for after, b in zip(parameters(agent), before, strict=True)])

    reference, fast = change(CONFIG), change(dataclasses.replace(CONFIG, **option))
    assert reference.norm() > 0
    assert float((fast - reference).norm() / reference.norm()) < tolerance
    if "precision" in option:  # autocast really engaged: not bitwise fp32
        assert not torch.equal(reference, fast)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_without_native_bf16_matmuls_warns_naming_the_param(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr("pipeline.agents.td3.native_bf16", lambda device: native)
    bf16 = dataclasses.replace(CONFIG, precision=Precision.bf16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TD3(OBS, ACT, -np.ones(ACT), 2 * np.ones(ACT), bf16)
        TD3(OBS, ACT, -np.ones(ACT), 2 * np.ones(ACT), CONFIG)  # fp32 never warns
    messages = [str(w.message) for w in caught if "td3.precision" in str(w.message)]
    assert all(issubclass(w.category, RuntimeWarning) for w in caught if "td3.precision" in str(w.message))
    if native:
        assert messages == []
    else:
        assert len(messages) == 1 and "slower than fp32" in messages[0]
