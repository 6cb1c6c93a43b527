"""SAC for K seeds: bounds, determinism, seed batching, the temperature, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.agents.sac import SAC
from pipeline.agents.sac_config import SACConfig
from pipeline.data.replay import Batch

pytestmark = pytest.mark.usefixtures("one_thread")
OBS, ACT = 5, 3
SMALL = SACConfig(hidden=16, batch_size=8)


def agent(seed: int = 0, n_seeds: int = 1, config: SACConfig = SMALL, **kwargs) -> SAC:
    low, high = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 0.5, 3.0])
    return SAC(OBS, ACT, low, high, config, seed=seed, n_seeds=n_seeds, **kwargs)


def batches(n_seeds: int, count: int = 6, seed: int = 0, batch: int = 8) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)

    def one() -> Batch:
        return Batch(torch.randn(n_seeds, batch, OBS, generator=g), torch.rand(n_seeds, batch, ACT, generator=g),
                     torch.randn(n_seeds, batch, generator=g), torch.randn(n_seeds, batch, OBS, generator=g),
                     (torch.rand(n_seeds, batch, generator=g) > 0.1).float())  # fmt: skip

    return [one() for _ in range(count)]


def flat(sac: SAC) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in (*sac.actor.parameters(), *sac.critic.parameters(), sac.log_alpha)])


def test_sampled_and_mean_actions_respect_asymmetric_bounds() -> None:
    sac = agent()
    obs = torch.randn(1, 500, OBS) * 10
    for deterministic in (True, False):
        a = sac.act(obs, deterministic=deterministic)
        assert (a >= torch.tensor([-1.0, -2.0, 0.0])).all() and (a <= torch.tensor([1.0, 0.5, 3.0])).all()


def test_log_probabilities_match_the_direct_density_of_the_squashed_gaussian() -> None:
    """The stable tanh correction equals log N(u) - log(1 - tanh(u)^2) computed directly."""
    sac = agent()
    x = torch.randn(1, 64, OBS)
    noise = torch.randn(1, 64, ACT)
    _, log_prob = sac.actor.sample(x, noise)
    mean, log_std = sac.actor(x)
    u = mean + log_std.exp() * noise
    direct = torch.distributions.Normal(mean, log_std.exp()).log_prob(u) - torch.log(1 - torch.tanh(u) ** 2)
    torch.testing.assert_close(log_prob, direct.sum(-1), rtol=1e-4, atol=1e-4)


def test_same_seed_same_training_different_seed_differs() -> None:
    runs = [agent(seed=s) for s in (1, 1, 2)]
    for sac in runs:
        for b in batches(1):
            sac.train(b)
    assert torch.equal(flat(runs[0]), flat(runs[1]))
    assert not torch.equal(flat(runs[0]), flat(runs[2]))


def test_seed_k_of_a_batched_agent_is_the_single_run_with_seed_k() -> None:
    batched = agent(seed=4, n_seeds=3)
    single = agent(seed=5)
    for b in batches(3):
        batched.train(b)
        single.train(Batch(*(x[1:2] for x in b[:5])))
    for mine, theirs in zip(batched.actor.parameters(), single.actor.parameters(), strict=True):
        torch.testing.assert_close(mine[1:2], theirs, rtol=1e-5, atol=1e-6)  # actor member 1
    for mine, theirs in zip(batched.critic.parameters(), single.critic.parameters(), strict=True):
        torch.testing.assert_close(mine[2:4], theirs, rtol=1e-5, atol=1e-6)  # seed 1's twin critics
    torch.testing.assert_close(batched.log_alpha[1:2], single.log_alpha)


def test_training_moves_the_temperature_towards_the_target_entropy_only_when_learned() -> None:
    learned, fixed = agent(), agent(config=SACConfig(hidden=16, batch_size=8, learn_alpha=False, init_alpha=0.3))
    for b in batches(1, count=3):
        learned.train(b)
        fixed.train(b)
    assert learned.alpha.item() != 1.0 and "alpha_loss" in learned.last_losses
    assert fixed.alpha.item() == pytest.approx(0.3) and "alpha_loss" not in fixed.last_losses


def test_the_critic_loss_lets_a_gradient_reach_the_state() -> None:
    """PEARL trains its encoder through the critics' loss: the state's gradient must flow, the target's not."""
    sac = agent(context_dim=2)
    b = batches(1)[0]
    z, next_z = torch.zeros(1, 8, 2, requires_grad=True), torch.zeros(1, 8, 2, requires_grad=True)
    state = torch.cat([b.obs, z], -1)
    next_state = torch.cat([b.next_obs, next_z], -1)
    sac.critic_loss(state, b.action, b.reward, next_state, b.not_done).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert next_z.grad is None  # the target is a constant


@pytest.mark.parametrize("n_seeds", [1, 2])
def test_save_load_gives_identical_actions_and_next_update(tmp_path: Path, n_seeds: int) -> None:
    sac = agent(n_seeds=n_seeds, context_dim=2)
    data = batches(n_seeds)
    with_context = [b._replace(context=torch.ones(n_seeds, 8, 2), next_context=torch.ones(n_seeds, 8, 2)) for b in data]
    for b in with_context[:3]:
        sac.train(b)
    sac.save(tmp_path / "sac.pt", {"setting": "x"})
    loaded = agent(seed=9, n_seeds=n_seeds, context_dim=2)
    loaded.load(tmp_path / "sac.pt", {"setting": "x"})
    obs, ctx = torch.randn(n_seeds, 4, OBS), torch.ones(n_seeds, 4, 2)
    assert torch.equal(sac.act(obs, ctx), loaded.act(obs, ctx))
    for b in with_context[3:]:
        sac.train(b)
        loaded.train(b)
    assert torch.equal(flat(sac), flat(loaded))
    with pytest.raises(ValueError, match=r"field 'meta\.setting'"):
        loaded.load(tmp_path / "sac.pt", {"setting": "y"})


def test_load_rejects_other_dimensions(tmp_path: Path) -> None:
    agent().save(tmp_path / "sac.pt")
    with pytest.raises(ValueError, match=r"dims \[5, 3, 0, 1\], this agent \[5, 3, 0, 2\]"):
        agent(n_seeds=2).load(tmp_path / "sac.pt")


def test_a_context_agent_requires_a_context_and_bad_bounds_name_the_key() -> None:
    with pytest.raises(ValueError, match="2-dim context"):
        agent(context_dim=2).select_action(np.zeros(OBS))
    with pytest.raises(ValueError, match=r"sac\.log_std_min"):
        agent(config=SACConfig(log_std_min=2.0, log_std_max=1.0))
    assert agent(config=SACConfig(hidden=8, layers=3)).critic.mlp.weights[1].shape == (2, 8, 8)
