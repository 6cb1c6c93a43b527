"""TD3: checkpoints round-trip exactly, seeding is reproducible, context input works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.data.replay import ReplayBuffer

OBS, ACT, CTX = 5, 2, 3
CONFIG = TD3Config(hidden=32, batch_size=16)


def make_agent(seed: int = 0, context_dim: int = 0) -> TD3:
    return TD3(OBS, ACT, -np.ones(ACT), 2 * np.ones(ACT), CONFIG, context_dim=context_dim, seed=seed)


def filled_buffer(seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(OBS, ACT, capacity=200, seed=seed)
    for _ in range(200):
        buffer.add(rng.normal(size=OBS), rng.uniform(-1, 2, ACT), rng.normal(), rng.normal(size=OBS), rng.random() < 0.1)
    return buffer


def train_steps(agent: TD3, buffer: ReplayBuffer, n: int) -> None:
    for _ in range(n):
        agent.train(buffer.sample(CONFIG.batch_size))


def parameters(agent: TD3) -> list[torch.Tensor]:
    nets = (agent.actor, agent.critic, agent.actor_target, agent.critic_target)
    return [p.detach().clone() for net in nets for p in net.parameters()]


def test_actions_respect_asymmetric_bounds() -> None:
    agent = make_agent()
    obs = torch.randn(1000, OBS) * 100
    actions = agent.act(obs)
    assert actions.min() >= -1 and actions.max() <= 2
    assert agent.select_action(np.zeros(OBS, dtype=np.float32)).shape == (ACT,)


def test_same_seed_same_training_different_seed_differs() -> None:
    runs = []
    for seed in (0, 0, 1):
        agent = make_agent(seed)
        train_steps(agent, filled_buffer(seed), 7)
        runs.append(parameters(agent))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_training_changes_actor_every_policy_freq_updates() -> None:
    agent, buffer = make_agent(), filled_buffer()
    before = [p.clone() for p in agent.actor.parameters()]
    train_steps(agent, buffer, 1)  # critic only
    assert all(torch.equal(a, b) for a, b in zip(before, agent.actor.parameters()))
    train_steps(agent, buffer, 1)  # now the actor and targets too
    assert not all(torch.equal(a, b) for a, b in zip(before, agent.actor.parameters()))
    assert agent.total_it == 2


@pytest.mark.parametrize("context_dim", [0, CTX])
def test_save_load_gives_identical_actions_and_next_update(tmp_path: Path, context_dim: int) -> None:
    agent, buffer = make_agent(context_dim=context_dim), filled_buffer()
    ctx = torch.randn(CONFIG.batch_size, context_dim) if context_dim else None

    def update(a: TD3, seed: int) -> None:
        b = buffer.sample(CONFIG.batch_size)
        a.train(b._replace(context=ctx, next_context=ctx))

    for _ in range(5):
        update(agent, 0)
    path = tmp_path / "td3.pt"
    agent.save(path)
    restored = make_agent(seed=99, context_dim=context_dim)  # different init, overwritten by load
    restored.load(path)
    assert restored.total_it == agent.total_it == 5

    obs = torch.randn(8, OBS)
    obs_ctx = torch.randn(8, context_dim) if context_dim else None
    assert torch.equal(agent.act(obs, obs_ctx), restored.act(obs, obs_ctx))

    generator_state = buffer.generator.get_state()
    update(agent, 0)
    buffer.generator.set_state(generator_state)
    update(restored, 0)
    assert all(torch.equal(a, b) for a, b in zip(parameters(agent), parameters(restored)))


def test_load_rejects_other_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "td3.pt"
    make_agent(context_dim=CTX).save(path)
    with pytest.raises(ValueError, match="dims"):
        make_agent(context_dim=0).load(path)


def test_context_agent_requires_context() -> None:
    with pytest.raises(ValueError, match="context"):
        make_agent(context_dim=CTX).act(torch.zeros(1, OBS))


def test_terminal_transitions_do_not_bootstrap() -> None:
    buffer = ReplayBuffer(OBS, ACT, capacity=4)
    buffer.add(np.zeros(OBS), np.zeros(ACT), 1.0, np.zeros(OBS), terminated=True)
    buffer.add(np.zeros(OBS), np.zeros(ACT), 1.0, np.zeros(OBS), terminated=False)  # e.g. truncated
    assert buffer.not_done[:2].tolist() == [0.0, 1.0]
