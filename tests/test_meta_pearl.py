"""PEARL: the encoder's posterior, the per-task buffers, the learner's streams, evaluation and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.agents.sac_config import SACConfig
from pipeline.envs import make_env
from pipeline.guards import NonFiniteError
from pipeline.methods.pearl.buffers import TaskBuffers
from pipeline.methods.pearl.config import PEARLConfig
from pipeline.methods.pearl.encoder import ContextEncoder, kl_to_standard_normal
from pipeline.methods.pearl.learner import PEARLLearner

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = PEARLConfig(latent_dim=2, encoder_hidden=8, encoder_layers=1, context_batch=4, encoder_capacity=30,
                    replay_capacity=500, exploration_episodes=1, sac=SACConfig(hidden=16, batch_size=8))  # fmt: skip


def learner(seeds: int = 1, first_seed: int = 0, config: PEARLConfig = SMALL, tasks=(0.1, 0.5), episode: int = 15,
            setting: str = "halfcheetah-armature") -> PEARLLearner:  # fmt: skip
    envs = [[make_env(setting, t, delay=5, max_episode_steps=episode) for t in tasks] for _ in range(seeds)]
    return PEARLLearner(envs, config, seed=3, first_seed=first_seed, steps=200, start_steps=10)


def weights(run: PEARLLearner) -> torch.Tensor:
    params = (*run.agent.actor.parameters(), *run.agent.critic.parameters(), *run.encoder.parameters())
    return torch.cat([p.detach().flatten() for p in params])


def test_the_posterior_is_the_product_of_the_factors_and_ignores_their_order() -> None:
    encoder = ContextEncoder(2, 6, 3, hidden=8, layers=2, seed=0)
    context = torch.randn(2, 4, 10, 6)  # [K, tasks, N, context]
    mean, variance = encoder(context)
    shuffled = encoder(context[:, :, torch.randperm(10)])
    torch.testing.assert_close(mean, shuffled[0])
    torch.testing.assert_close(variance, shuffled[1])
    # one factor alone is its own posterior; more factors shrink the variance
    single_mean, single_variance = encoder(context[:, :, :1])
    assert (variance < single_variance).all()
    out = encoder.mlp(context.reshape(2, -1, 6)).reshape(2, 4, 10, 6)[:, :, :1]
    torch.testing.assert_close(single_mean, out[..., :3].squeeze(2))
    # seed 1's encoder alone gives seed 1's rows of the batched call
    alone = encoder(context[1:2], members=slice(1, 2))
    torch.testing.assert_close(alone[0], mean[1:2])


def test_kl_to_the_prior_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    assert kl_to_standard_normal(torch.zeros(3), torch.ones(3)).item() == 0.0
    assert kl_to_standard_normal(torch.ones(3), torch.ones(3)).item() == pytest.approx(1.5)
    assert kl_to_standard_normal(torch.zeros(3), torch.full((3,), 0.5)).item() > 0


def test_task_buffers_keep_each_stream_apart_and_sample_only_its_rows() -> None:
    buffers = TaskBuffers(2, 3, capacity=4, obs_dim=1, action_dim=1)
    where = np.array([[True, False, True], [True, True, True]])
    for step in range(6):
        value = np.full((2, 3, 1), step, np.float32) + np.arange(3)[None, :, None] * 100
        buffers.add(where, value, value, np.full((2, 3), step), value, np.zeros((2, 3), bool))
    assert buffers.size.tolist() == [[4, 0, 4], [4, 4, 4]]
    with pytest.raises(ValueError, match="empty"):
        buffers.sample(5, [torch.Generator().manual_seed(0)] * 2)
    rows = buffers.sample_stream(1, 2, 50, torch.Generator().manual_seed(0)).obs.flatten()
    assert set(rows.tolist()) <= {202.0, 203.0, 204.0, 205.0}  # the last 4 rows of the stream, nothing else


def test_episodes_alternate_between_prior_and_posterior_z_and_only_prior_ones_feed_the_encoder() -> None:
    run = learner()
    run.train(15)  # one 15-step episode per task: a prior one
    assert not run.prior.any() and run.contexts.size.tolist() == [[15, 15]]
    run.train(15)  # a posterior episode: the encoder buffers do not grow
    assert run.prior.all() and run.contexts.size.tolist() == [[15, 15]] and run.replay.size.tolist() == [[30, 30]]
    kinds = [row[4] for row in run.finished_episodes()]
    assert kinds == ["random", "random", "learned", "learned"]  # the first began within the 10 start steps


@pytest.mark.parametrize("rate", [0.5, 1.5])
def test_gradient_steps_run_at_the_configured_rate_per_env_step(rate: float) -> None:
    from dataclasses import replace

    run = learner(config=replace(SMALL, updates_per_env_step=rate))
    run.train(30)
    assert run.agent.total_it == int(rate * 2 * 20)  # 2 tasks, 20 loop steps after the 10 start steps


def test_same_seed_gives_the_same_run_and_a_batched_seed_trains_as_it_does_alone() -> None:
    runs = [learner(seeds=2), learner(seeds=2), learner(seeds=1, first_seed=1)]
    for run in runs:
        run.train(40)
    assert torch.equal(weights(runs[0]), weights(runs[1]))
    alone, batched = runs[2], runs[0]
    torch.testing.assert_close(alone.agent.actor.mlp.weights[0][0], batched.agent.actor.mlp.weights[0][1],
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    torch.testing.assert_close(alone.encoder.mlp.weights[0][0], batched.encoder.mlp.weights[0][1], rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(batched.agent.critic.parameters(), alone.agent.critic.parameters(), strict=True):
        torch.testing.assert_close(mine[2:4], theirs, rtol=1e-4, atol=1e-5)  # seed 1's twin critics
    torch.testing.assert_close(batched.agent.log_alpha[1:2], alone.agent.log_alpha, rtol=1e-4, atol=1e-6)


def test_evaluation_scores_the_episode_after_exploration_and_leaves_training_untouched() -> None:
    run, twin = learner(), learner()
    run.train(20)
    twin.train(20)
    envs = [[make_env("halfcheetah-armature", t, delay=5, max_episode_steps=15) for t in (0.1, 0.3, 0.5)]]
    dense, delayed = run.evaluate(envs, 2, reset_seed=7)
    assert dense.shape == (1, 3) and np.allclose(dense, delayed, atol=1e-4)  # whole episodes: delay sums out
    assert np.array_equal(dense, run.evaluate(envs, 2, reset_seed=7)[0])
    assert np.array_equal(run.obs, twin.obs) and torch.equal(run.z, twin.z) and np.array_equal(run.prior, twin.prior)
    generators = (*run.agent.generators, *run.batch_generators, *run.z_generators)
    twins = (*twin.agent.generators, *twin.batch_generators, *twin.z_generators)
    assert all(torch.equal(g.get_state(), h.get_state()) for g, h in zip(generators, twins, strict=True))
    run.train(10)
    twin.train(10)
    assert torch.equal(weights(run), weights(twin))


@pytest.mark.parametrize("split", [7, 15, 23])  # random start steps; an episode's end (z flips); mid-episode
def test_interrupted_training_resumes_bitwise(tmp_path, split: int) -> None:
    whole = learner(seeds=2)
    whole.train(50)
    first = learner(seeds=2)
    first.train(split)
    first.save_state(tmp_path)
    resumed = learner(seeds=2)
    resumed.load_state(tmp_path)
    resumed.train(50 - split)
    assert np.array_equal(whole.prior, resumed.prior) and np.array_equal(whole.episode_start, resumed.episode_start)
    assert np.array_equal(whole.replay.size, resumed.replay.size)
    assert torch.equal(weights(whole), weights(resumed))
    assert whole.finished_episodes() == resumed.finished_episodes()
    assert np.array_equal(whole.obs, resumed.obs) and torch.equal(whole.z, resumed.z)


def test_runs_on_an_env_whose_episodes_end_early_and_stops_on_a_non_finite_reward(monkeypatch) -> None:
    run = learner(setting="hopper-size", tasks=(0.035, 0.065), episode=40)
    run.train(60)
    assert len(run.finished_episodes()) > 0 and run.replay.size.min() == 60
    monkeypatch.setattr(run.envs[0][0], "step", lambda a: (run.obs[0, 0], float("nan"), False, False, {}))
    with pytest.raises(NonFiniteError, match="non-finite observation or reward"):
        run.train(1)


def test_embeddings_give_latent_columns_per_seed_and_task() -> None:
    run = learner(seeds=2)
    run.train(20)
    columns, rows = run.embeddings()
    assert columns == ["z0", "z1"] and len(rows) == 2 * 2 * 50
    assert {r[:2] for r in rows} == {(3, 0), (3, 1), (4, 0), (4, 1)}  # (seed, task)
