"""MCAT meta-training: every method runs on two tasks of every setting; streams and evaluation bookkeeping."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.envs import make_env
from pipeline.envs.families import FAMILIES
from pipeline.guards import NonFiniteError
from pipeline.methods.mcat import METHODS as MCAT_METHODS
from pipeline.methods.mcat import loop
from pipeline.methods.mcat.config import MetaConfig
from pipeline.methods.mcat.loop import MetaTrainer, Switches, build_seed_models, encode, evaluate_contextual
from pipeline.methods.mcat.resume import load_meta_state, save_meta_state
from pipeline.methods.mcat.sil_config import SILConfig, SILSource
from pipeline.methods.mcat.streams import Streams
from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TWO_TASKS = {
    "halfcheetah-armature": [0.1, 0.5],
    "halfcheetah-mass": [0.75, 1.25],
    "ant-damping": [0.5, 2.0],
    "ant-cripple": [0, 2],
    "hopper-size": [0.035, 0.065],
}
CONTEXT = ContextConfig(history=3, z_dim=4, hidden=[16], feature_segments=16)
FORWARD = ForwardModelConfig(hidden=16, layers=1, future_steps=2, batch_size=16)
TRANSLATOR = TranslatorConfig(embed=8, hidden=16, layers=1, batch_size=16)
METHODS = {spec.name: Switches(**spec.options) for spec in MCAT_METHODS}  # the family's methods' switches


def trainer(
    setting: str, method: str, seeds: int = 1, delay: int = 5, first_seed: int = 0, max_episode_steps: int = 15
) -> MetaTrainer:
    envs = [
        [make_env(setting, t, delay=delay, max_episode_steps=max_episode_steps) for t in TWO_TASKS[setting]]
        for _ in range(seeds)
    ]
    space = envs[0][0].action_space
    obs_dim, act_dim = envs[0][0].observation_space.shape[0], space.shape[0]
    agent = TD3(obs_dim, act_dim, space.low, space.high, TD3Config(hidden=16, batch_size=16), context_dim=4,
                seed=3 + first_seed, n_seeds=seeds)  # fmt: skip
    models = []
    for s in range(first_seed, first_seed + seeds):
        torch.manual_seed(3 + s)  # each seed's C, F, H from its own stream, as the stage does
        models.append(build_seed_models(obs_dim, act_dim, space.low, space.high, CONTEXT, FORWARD, TRANSLATOR))
    return MetaTrainer(
        agent, models, envs, METHODS[method], meta=MetaConfig(replay_capacity=500), context=CONTEXT, forward=FORWARD,
        translator=TRANSLATOR, sil=SILConfig(batch_size=16), retrain_every=20, retrain_updates=3, seed=3,
        first_seed=first_seed,
    )  # fmt: skip


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("setting", FAMILIES)
def test_every_method_runs_on_two_tasks_of_every_setting(setting: str, method: str) -> None:
    run = trainer(setting, method)
    evaluations = []
    run.run(45, start_steps=10, eval_every=1000, evaluate=evaluations.append, progress=False)
    assert evaluations == [0, 45] and run.step == 45 and run.replay.size == 45
    spec = METHODS[method]
    assert run.translator_ready.all() == spec.transfer  # retrained at steps 20 and 40
    assert (run.sil_buffer is not None) == spec.sil
    if spec.sil:
        assert min(run.sil_buffer.sizes) > 0  # episodes of <= 15 steps ended and were stored
    assert torch.isfinite(run.features).all() and run.features.abs().sum() > 0


def test_transfer_happens_once_a_task_does_clearly_better() -> None:
    run = trainer("halfcheetah-armature", "mcat")
    run.run(20, start_steps=5, eval_every=1000, evaluate=lambda step: None, progress=False)
    assert run.translator_ready.all()
    history = run.histories[0]
    for _ in range(3):  # task 1's learned policy earns far more than task 0's
        history.record(0, None, -100.0, run.step)
        history.record(1, None, 500.0, run.step)
    run._end_episode(0, 0, received=-100.0)
    assert run.sources[0, 0] == 1
    actions, _ = run._policy_actions()  # acting through H on task 0, the learned policy on task 1
    obs = torch.as_tensor(run.streams.obs)  # [1 seed, 2 tasks, obs]
    with torch.no_grad():
        learned = run.agent.act(obs, encode(run.models, run.streams.segment))[0]
        z_src, z_tgt = run.features[0][1], run.features[0][0]  # source task 1's feature, target task 0's
        source_action = run.agent.act(obs, z_src.expand(1, 2, -1))[0, 0]  # π(s, z(source)) at task 0's state
        translated = run.models[0].translator(obs[0, :1], source_action[None], z_src[None], z_tgt[None])[0]
    np.testing.assert_allclose(actions[0, 0], translated.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(actions[0, 1], learned[1].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(actions[0, 0], learned[0].numpy(), atol=1e-3)  # H's action, not the learned one


def test_trial_transfers_act_without_exploration_noise_and_followed_ones_with_it() -> None:
    run = trainer("halfcheetah-armature", "mcat")
    run.run(20, start_steps=5, eval_every=1000, evaluate=lambda step: None, progress=False)
    history = run.histories[0]
    for _ in range(3):  # task 1's learned policy earns far more than task 0's: task 0 tries it
        history.record(0, None, -100.0, run.step)
        history.record(1, None, 500.0, run.step)
    run._end_episode(0, 0, received=-100.0)
    assert run.sources[0, 0] == 1 and loop.KINDS[run.kinds[0, 0]] == "trial"
    deterministic, _ = run._policy_actions()
    acted = run.act()
    np.testing.assert_array_equal(acted[0, 0], np.clip(deterministic[0, 0], run.low, run.high))  # the trial: no noise
    assert not np.allclose(acted[0, 1], deterministic[0, 1])  # task 1's learned policy explores
    run.kinds[0, 0] = loop.KINDS.index("follow")
    assert not np.allclose(run.act()[0, 0], deterministic[0, 0])  # a followed transfer explores too
    assert run.episode_log[-1][3:5] == ("learned", "learned")  # the episode that just ended, logged


@pytest.mark.parametrize("source", ["all", "transferred"])
def test_self_imitation_keeps_all_episodes_or_only_transferred_ones(source: str) -> None:
    run = trainer("halfcheetah-armature", "mcat")
    run.sil = SILConfig(batch_size=16, source=SILSource(source))
    run.run(20, start_steps=5, eval_every=1000, evaluate=lambda step: None, progress=False)
    stored = run.sil_buffer.sizes[0]
    assert stored == (0 if source == "transferred" else stored) and (source == "transferred" or stored > 0)
    run.sources[0, 0] = 1  # the running episode of task 0 is a transferred one
    run.episodes[0][0] = run.episodes[0][0] or [(run.streams.obs[0, 0], np.zeros(6, np.float32), 1.0,
                                                 np.zeros(run._segment_size, np.float32))]  # fmt: skip
    run._end_episode(0, 0, received=1.0)
    assert run.sil_buffer.sizes[0] > stored  # a transferred episode is stored either way


@pytest.mark.parametrize("method", ["mcat", "mcat_no_sil"])
def test_self_imitation_updates_run_from_the_time_limit_on(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    run = trainer("halfcheetah-armature", method)  # 15-step episodes
    run.sil.updates_per_step = 1.0
    steps_at_update = []
    real = loop.sil_losses
    monkeypatch.setattr(loop, "sil_losses", lambda *a, **kw: (steps_at_update.append(run.step), real(*a, **kw))[1])
    run.run(30, start_steps=5, eval_every=1000, evaluate=lambda step: None, progress=False)
    if METHODS[method].sil:  # one per TD3 update (2 tasks: 2 per loop step) from loop step 15 on
        assert steps_at_update == [step for step in range(15, 31) for _ in range(2)]
    else:
        assert steps_at_update == [] and run.sil_buffer is None


@pytest.mark.parametrize("rate", [0.0, 0.125, 0.3, 1.0, 2.0])
def test_sil_updates_are_spread_evenly_at_the_configured_rate(rate: float) -> None:
    run = trainer("halfcheetah-armature", "mcat")
    run.sil.updates_per_step = rate
    due = []
    for n in range(1, 81):
        run.agent.total_it = n
        due.append(run._sil_updates_due())
    assert sum(due) == int(80 * rate) and max(due) - min(due) <= 1
    if rate == 0.125:
        assert [n for n, d in enumerate(due, 1) if d] == list(range(8, 81, 8))
    if rate == 0.3:  # floor(0.3 n) steps up at n = 4, 7, 10, 14, 17, 20, ...
        assert [n for n, d in enumerate(due, 1) if d][:6] == [4, 7, 10, 14, 17, 20]
    resumed = []  # a resumed run continues from TD3's saved update count
    for n in range(1001, 1081):
        run.agent.total_it = n
        resumed.append(run._sil_updates_due())
    assert sum(resumed) == int(1080 * rate) - int(1000 * rate)


def test_cached_contexts_are_todays_encoders_after_a_retrain() -> None:
    run = trainer("halfcheetah-armature", "mcat")
    run.run(25, start_steps=5, eval_every=1000, evaluate=lambda step: None, progress=False)  # retrained at 20
    rows = (torch.arange(1)[:, None], torch.arange(2)[None, :].expand(1, 2), torch.full((1, 2), 3))
    encoder = run.models[0].encoder
    for cache, segments in (
        (run.replay.contexts, run.replay._segments),
        (run.replay.next_contexts, run.replay._next_segments),
    ):
        assert cache.valid[rows].all()
        assert torch.allclose(cache.z[rows][0], encoder(segments(*rows)[0]).detach(), atol=1e-6)
    new_row = (rows[0], rows[1], torch.full((1, 2), 23))  # added after the retrain, cached when added
    assert run.replay.contexts.valid[new_row].all()
    assert torch.allclose(
        run.replay.contexts.z[new_row][0], encoder(run.replay._segments(*new_row)[0]).detach(), atol=1e-6
    )
    sil = run.sil_buffer
    assert sil.encoded.valid[0, : sil.sizes[0]].all()
    assert torch.allclose(sil.encoded.z[0, :5], run.models[0].encoder(sil.context[0, :5]).detach(), atol=1e-6)


def test_same_seed_gives_the_same_run() -> None:
    def losses() -> list[float]:
        run = trainer("hopper-size", "mcat", seeds=2)
        run.run(30, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False)
        return [float(p.detach().sum()) for _, p in run.agent.named_parameters()]

    assert losses() == losses()


def test_a_batched_seed_trains_as_it_does_alone_when_episodes_end_early() -> None:
    """Hopper episodes end at lengths that differ by seed; self-imitation starts in the first steps here
    (start steps below the time limit), so a seed that waited on another's first episode would differ."""
    batched = trainer("hopper-size", "mcat", seeds=2, max_episode_steps=40)
    alone = trainer("hopper-size", "mcat", first_seed=1, max_episode_steps=40)
    for run in (batched, alone):
        run.run(60, start_steps=5, eval_every=1000, evaluate=lambda step: None, progress=False)
    assert batched.sil_buffer.sizes[1] == alone.sil_buffer.sizes[0] > 0
    for (name, ours), (_, theirs) in zip(batched.agent.named_parameters(), alone.agent.named_parameters(), strict=True):
        seed_1 = ours[2:4] if name.startswith("critic") else ours[1:2]  # critics: [seeds x twins, ...]
        torch.testing.assert_close(seed_1, theirs, rtol=1e-5, atol=1e-5, msg=name)


def test_self_imitation_needs_time_limited_envs() -> None:
    run = trainer("halfcheetah-armature", "mcat")
    run.envs[0][0] = HalfCheetahEnv()  # built directly: no spec, no time limit
    with pytest.raises(ValueError, match="time-limited"):
        MetaTrainer(run.agent, run.models, run.envs, METHODS["mcat"], meta=MetaConfig(replay_capacity=50),
                    context=CONTEXT, forward=FORWARD, translator=TRANSLATOR, sil=SILConfig(batch_size=16),
                    retrain_every=20, retrain_updates=3, seed=3)  # fmt: skip


def test_streams_keep_the_last_steps_and_restart_ended_episodes() -> None:
    envs = [[make_env("halfcheetah-armature", 0.1, max_episode_steps=4)]]
    streams = Streams(envs, history=2, reset_seeds=np.zeros((1, 1), int))
    active = np.ones((1, 1), bool)
    first = streams.obs.copy()
    for step in range(4):
        actions = np.full((1, 1, 6), 0.1 * step, np.float32)
        _, next_obs, _, ended = streams.step(actions, active)
        finished = streams.advance(actions, next_obs, active, ended)
        if step == 0:
            assert np.allclose(streams.segment[0, 0, -1], np.r_[next_obs[0, 0] - first[0, 0], actions[0, 0]])
            assert not streams.segment[0, 0, 0].any()  # before the episode: zeros
    assert len(finished) == 1 and finished[0].received == pytest.approx(finished[0].dense)
    assert streams.episode[0, 0] == 1 and not streams.segment.any() and streams.received[0, 0] == 0


def test_evaluation_reports_equal_dense_and_delayed_returns_over_whole_episodes() -> None:
    run = trainer("hopper-size", "mcat_no_pt", seeds=2, delay=4)
    envs = [[make_env("hopper-size", t, delay=4, max_episode_steps=15) for t in (0.03, 0.07)] for _ in range(2)]
    dense, delayed = evaluate_contextual(run.agent, run.models, envs, episodes=2, reset_seed=0, history=3)
    assert dense.shape == (2, 2)
    np.testing.assert_allclose(dense, delayed, rtol=1e-9)


def test_interrupted_meta_training_resumes_bitwise(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    def finish(run: MetaTrainer) -> list[float]:
        run.run(60, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False)
        weights = [float(p.detach().double().sum()) for _, p in run.agent.named_parameters()]
        models = [float(p.detach().double().sum()) for seed in run.models for p in seed.encoder.parameters()]
        return [*weights, *models, float(run.features.double().sum()), float(run.transferred_episodes)]

    expected = finish(trainer("hopper-size", "mcat", seeds=2))

    folder = tmp_path / "resume"
    run = trainer("hopper-size", "mcat", seeds=2)
    real_train = run._train

    def crash_at_step_50() -> dict[str, float]:
        if run.step == 50:
            raise KeyboardInterrupt
        return real_train()

    def checkpoint() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        save_meta_state(folder, run)

    monkeypatch.setattr(run, "_train", crash_at_step_50)
    with pytest.raises(KeyboardInterrupt):
        run.run(60, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False,
                checkpoint=checkpoint, checkpoint_every=20)  # fmt: skip

    fresh = trainer("hopper-size", "mcat", seeds=2)
    fresh.start_steps = 10
    load_meta_state(folder, fresh)
    assert fresh.step == 40
    assert finish(fresh) == expected


def test_chunks_of_train_are_the_run_of_run() -> None:
    """Stage meta_train drives `train` in chunks between evaluations and checkpoints: the same run as `run`."""

    def weights(run: MetaTrainer) -> list[float]:
        return [float(p.detach().double().sum()) for _, p in run.agent.named_parameters()]

    whole = trainer("hopper-size", "mcat", seeds=2)
    whole.run(45, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False)
    chunked = trainer("hopper-size", "mcat", seeds=2)
    chunked.start_steps = 10
    for steps in (7, 13, 1, 24):
        chunked.train(steps)
    assert chunked.step == whole.step == 45 and weights(chunked) == weights(whole)


def test_nan_loss_stops_meta_training(monkeypatch: pytest.MonkeyPatch) -> None:
    run = trainer("halfcheetah-armature", "mcat_no_pt")
    real = run.agent.train
    monkeypatch.setattr(run.agent, "train", lambda batch: real(batch._replace(reward=batch.reward * float("nan"))))
    with pytest.raises(NonFiniteError, match=r"non-finite loss .*critic.* at env step 22"):
        run.run(30, start_steps=10, eval_every=1000, evaluate=lambda step: None, progress=False)
