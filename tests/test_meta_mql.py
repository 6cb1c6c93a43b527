"""MQL: history windows, the propensity model, the learner's streams, test-time adaptation and resume."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline.envs import make_env
from pipeline.methods.mql.config import MQLConfig
from pipeline.methods.mql.learner import MQLLearner
from pipeline.methods.mql.propensity import fit_logistic, propensity
from pipeline.methods.mql.replay import HistoryReplay

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = MQLConfig(history=4, context_hidden=5, hidden=16, batch_size=8, replay_capacity=500, snapshot_episodes=2,
                  snapshot_updates=2, replay_updates=3, replay_batch_multiple=2)  # fmt: skip


def learner(seeds: int = 1, first_seed: int = 0, config: MQLConfig = SMALL, tasks=(0.1, 0.5), episode: int = 15,
            setting: str = "halfcheetah-armature") -> MQLLearner:  # fmt: skip
    envs = [[make_env(setting, t, delay=5, max_episode_steps=episode) for t in tasks] for _ in range(seeds)]
    return MQLLearner(envs, config, seed=3, first_seed=first_seed, steps=200, start_steps=10)


def weights(run: MQLLearner, seed: int = 0) -> torch.Tensor:
    agent = run.agents[seed]
    return torch.cat([p.detach().flatten() for p in (*agent.actor.parameters(), *agent.critic.parameters())])


def test_a_rows_history_is_the_steps_before_it_in_its_episode_and_the_next_one_ends_with_it() -> None:
    replay = HistoryReplay(1, capacity=6, obs_dim=1, action_dim=1, history=3)
    for step in range(8):  # episodes: steps 0-4, then 5-7; the ring keeps the last 6 (steps 2-7)
        replay.add([[step]], [[10 + step]], [100 + step], [[step + 1]], [False], [0 if step < 5 else 1])
    rows = replay.all_rows(0)  # ring order: steps 6, 7, 2, 3, 4, 5
    by_step = {int(o): i for i, o in enumerate(rows.obs[:, 0])}
    # step 4: steps 1 (overwritten: zeros), 2, 3 before it, each (action, reward, next obs)
    assert rows.history[by_step[4]].tolist() == [[0, 0, 0], [12, 102, 3], [13, 103, 4]]
    assert rows.next_history[by_step[4]].tolist() == [[12, 102, 3], [13, 103, 4], [14, 104, 5]]
    # step 6: only step 5 of its episode (steps 3, 4 belong to the episode before)
    assert rows.history[by_step[6]].tolist() == [[0, 0, 0], [0, 0, 0], [15, 105, 6]]


def test_the_propensity_weights_replay_transitions_that_look_like_the_new_task_up() -> None:
    g = torch.Generator().manual_seed(0)
    new, old = torch.randn(200, 2, generator=g) + 2.0, torch.randn(400, 2, generator=g)
    model = fit_logistic(new, old, c=0.5)
    assert model.accuracy > 0.9
    beta = propensity(model, torch.tensor([[2.0, 2.0], [-2.0, -2.0]]), clip=1.0)
    assert beta[0] > 1.0 and beta[1] == 0.0  # like the new task: weighted up; unlike: below 0.1, cut to 0
    assert beta[0] <= np.exp(1.0) + 1e-6  # the logit is clipped at -beta_clip
    assert torch.equal(fit_logistic(new, old, c=0.5).weight, model.weight)  # deterministic


def test_same_seed_gives_the_same_run_and_a_seed_trains_as_it_does_beside_others() -> None:
    runs = [learner(seeds=2), learner(seeds=2), learner(seeds=1, first_seed=1)]
    for run in runs:
        run.train(30)
    assert torch.equal(weights(runs[0]), weights(runs[1]))
    assert torch.equal(weights(runs[0], 1), weights(runs[2], 0))  # separate models: exactly equal
    assert not torch.equal(weights(runs[0], 0), weights(runs[0], 1))
    assert runs[0].agents[0].total_it == 2 * 20  # one update per env step of each task after the start steps


def test_adaptation_changes_only_a_copy_and_is_deterministic() -> None:
    run, twin = learner(), learner()
    run.train(30)
    twin.train(30)
    envs = [[make_env("halfcheetah-armature", t, delay=5, max_episode_steps=15) for t in (0.1, 0.5, 0.3)]]
    adapted = run.evaluate(envs, 1, reset_seed=7)
    assert np.array_equal(adapted[0], run.evaluate(envs, 1, reset_seed=7)[0])
    zero_shot = replace(SMALL, adaptation=False)
    run.config = zero_shot
    plain = run.evaluate(envs, 1, reset_seed=7)
    run.config = SMALL
    assert np.allclose(adapted[0][:, :2], plain[0][:, :2], rtol=1e-5)  # training tasks: never adapted
    assert adapted[0][0, 2] != plain[0][0, 2]  # the test task: the adapted copy acts differently
    assert np.allclose(adapted[0], adapted[1], atol=1e-4)  # whole episodes: delayed sums to dense
    run.train(10)
    twin.train(10)
    assert torch.equal(weights(run), weights(twin))  # evaluation left training untouched


def test_interrupted_training_resumes_bitwise(tmp_path) -> None:
    whole = learner(seeds=2)
    whole.train(45)
    first = learner(seeds=2)
    first.train(22)
    first.save_state(tmp_path)
    resumed = learner(seeds=2)
    resumed.load_state(tmp_path)
    resumed.train(23)
    for s in range(2):
        assert torch.equal(weights(whole, s), weights(resumed, s))
    assert whole.finished_episodes() == resumed.finished_episodes()
    assert np.array_equal(whole.histories.steps, resumed.histories.steps)


def test_runs_where_episodes_end_early() -> None:
    run = learner(setting="hopper-size", tasks=(0.035, 0.065), episode=40)
    run.train(50)
    assert len(run.finished_episodes()) > 0 and run.replays[0].size == 50
