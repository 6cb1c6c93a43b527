"""MCAT meta-training (paper Sec. 3.4): context TD3 + self-imitation + policy transfer, K seeds at once.

One loop serves the three methods of the family (pipeline/methods/mcat), which differ by two switches
(`Switches`): policy transfer (PT: the transfer rule may make another task's policy act on a task, through
the action translator H) and self-imitation learning (SIL). Per env step, for every seed k and training
task i in lockstep:

1. act: π_k(s, z) with z = C_k(the episode's last K_h (Δs, a)) or, when the transfer rule chose
   source j for this episode, H_k(s, π_k(s, z_k(j)), z_k(j), z_k(i)) with the task features
   z_k(·); plus Gaussian exploration noise; uniform random actions for the first `start_steps`;
2. store the transition with its context segment in the task's replay; at an episode's end,
   record its return for the transfer rule and (with SIL) the episode for self-imitation;
3. T TD3 updates of every seed (one per env step) on batches drawn uniformly over tasks, contexts
   from today's C, with SIL updates spread among them at `sil.updates_per_step` (SIL, too, encodes
   its stored segments with today's C); both buffers cache each row's z until C changes
   (`pipeline.methods.mcat.context_cache`);
4. every `retrain_every` steps: C and F on the replay (L_forw + L_cont), the task features and,
   with PT, H through the frozen F (docs/algorithms/mcat.md); then the cached z are encoded anew.

Rewards are what the envs emit (the caller delays them); evaluation reports the dense and the
delayed return of the deterministic policy with its context inferred online from its own history.
`MetaTrainer` implements `pipeline.methods.protocol.MetaLearner`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import gymnasium
import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.agents.td3 import TD3
from pipeline.data.replay import Batch
from pipeline.guards import NonFiniteError
from pipeline.methods.mcat.config import MetaConfig
from pipeline.methods.mcat.resume import load_meta_state, save_meta_state
from pipeline.methods.mcat.sil import SILBuffer, SILConfig, sil_losses
from pipeline.methods.mcat.sil_config import SILSource
from pipeline.methods.mcat.streams import Streams
from pipeline.methods.mcat.task_replay import TaskReplay
from pipeline.methods.mcat.transfer_rule import LEARNED, Choice, RecentReturns, choose_policy
from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig
from pipeline.models.context import ContextEncoder
from pipeline.models.epochs import Schedule
from pipeline.models.forward import GaussianForwardModel
from pipeline.models.translator import ActionTranslator
from pipeline.seeding import stream_generator
from pipeline.transfer.fit import fit_context_and_forward, fit_translator, task_features
from pipeline.transfer.windows import Windows

NOISE_STREAM = 101  # numpy seeds [seed, k, NOISE_STREAM]: exploration noise, apart from every other stream
ACTION_SPACE_OFFSET = 500  # random start actions of env (k, i): seed + 1000 k + i + this (its resets: without it)


EMBEDDING_SEGMENTS = 50  # context segments per (seed, task) in embeddings.csv (App. D.5's scatter)


KINDS = ("random", "learned", "trial", "follow")  # how an episode's acting policy was chosen


class Switches(NamedTuple):
    """What tells the family's methods apart (their `options` in pipeline/methods/mcat/__init__.py)."""

    transfer: bool  # policy transfer through the action translator
    sil: bool  # self-imitation learning


class SeedModels(NamedTuple):
    encoder: ContextEncoder
    forward: GaussianForwardModel
    translator: ActionTranslator


def build_seed_models(
    obs_dim: int,
    action_dim: int,
    low: np.ndarray,
    high: np.ndarray,
    context: ContextConfig,
    forward: ForwardModelConfig,
    translator: TranslatorConfig,
) -> SeedModels:
    """Seed k's C, F and H (weights from torch's global generator: seed it first)."""
    encoder = ContextEncoder(obs_dim, action_dim, history=context.history, z_dim=context.z_dim, hidden=context.hidden)
    forward_model = GaussianForwardModel(
        obs_dim,
        action_dim,
        context.z_dim,
        hidden=forward.hidden,
        layers=forward.layers,
        max_logvar=forward.max_logvar,
        min_logvar=forward.min_logvar,
    )
    bounds = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
    sizes = {"embed": translator.embed, "hidden": translator.hidden, "layers": translator.layers}
    return SeedModels(encoder, forward_model, ActionTranslator(obs_dim, action_dim, *bounds, context.z_dim, **sizes))


@torch.no_grad()
def encode(models: Sequence[SeedModels], segments: np.ndarray | torch.Tensor) -> torch.Tensor:
    """z of context segments [K, ..., K_h, step], seed k's by its own encoder: [K, ..., z_dim]."""
    segments = torch.as_tensor(segments, dtype=torch.float32)
    return torch.stack([m.encoder(segments[k]) for k, m in enumerate(models)])


def evaluate_contextual(
    agent: TD3,
    models: Sequence[SeedModels],
    envs: Sequence[Sequence[gymnasium.Env]],
    episodes: int,
    reset_seed: int,
    history: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean dense and delayed returns [K, T] of the deterministic π_k(s, C_k(its own history)) on envs[k][i]."""
    k, t = len(envs), len(envs[0])
    dense, delayed = np.zeros((k, t)), np.zeros((k, t))
    for episode in range(episodes):
        streams = Streams(envs, history, np.full((k, t), reset_seed + episode))
        running = np.ones((k, t), bool)
        while running.any():
            z = encode(models, streams.segment)
            actions = agent.act(torch.as_tensor(streams.obs), z).numpy()
            _, next_obs, _, ended = streams.step(actions, running)
            streams.advance(actions, next_obs, running, ended, reset=False)
            running &= ~ended
        dense += streams.dense
        delayed += streams.received
    return dense / episodes, delayed / episodes


def _longest_episode(envs: Sequence[Sequence[gymnasium.Env]]) -> int:
    """Loop steps by which every stream has finished an episode: the time limit of the envs.

    Self-imitation starts there for every seed at once. Starting once the seeds' buffers all hold an
    episode would make a seed wait on the slowest other seed of a batch (Hopper and Ant episodes
    end early, at lengths that differ by seed), so seed k batched would not match seed k alone."""
    limits = [env.spec.max_episode_steps if env.spec is not None else None for row in envs for env in row]
    if None in limits:
        raise ValueError("self-imitation needs time-limited envs (make_env's max_episode_steps): an env has none")
    return max(limits)


class MetaTrainer:
    """The loop's state; `run` drives it. envs[k][i]: seed k's env of training task i (rewards delayed)."""

    def __init__(
        self,
        agent: TD3,
        models: Sequence[SeedModels],
        envs: Sequence[Sequence[gymnasium.Env]],
        method: Switches,
        *,
        meta: MetaConfig,
        context: ContextConfig,
        forward: ForwardModelConfig,
        translator: TranslatorConfig,
        sil: SILConfig,
        retrain_every: int,
        retrain_updates: int,
        seed: int,
        first_seed: int = 0,
    ):
        """`retrain_every`: loop steps between fits of C, F (and H); `retrain_updates`: updates per epoch.
        `first_seed`: the run's index of this trainer's seed 0. Seed k draws every random stream as seed
        `first_seed + k` of a run does, so seeds trained one at a time match them batched."""
        k, t = len(envs), len(envs[0])
        if agent.n_seeds != k or len(models) != k or agent.context_dim != context.z_dim:
            raise ValueError(f"agent ({agent.n_seeds} seeds, context {agent.context_dim}) and models ({len(models)}) "
                             f"must match {k} seeds of envs and z_dim {context.z_dim}")  # fmt: skip
        self.agent, self.models, self.envs, self.method = agent, list(models), envs, method
        self.meta, self.context, self.forward, self.translator, self.sil = meta, context, forward, translator, sil
        self.n_seeds, self.n_tasks = k, t
        self._segment_size = context.history * (agent.obs_dim + agent.action_dim)  # SIL keeps segments, not z
        self.retrain_every, self.retrain_updates = retrain_every, retrain_updates
        space = envs[0][0].action_space
        self.low, self.high = space.low, space.high
        self.noise_std = agent.config.expl_noise * (self.high - self.low) / 2
        # every random stream its own: exploration noise, env resets, random actions, replay sampling
        seeds = list(range(first_seed, first_seed + k))  # this trainer's seeds, as the run numbers them
        self.rngs = [np.random.default_rng([seed, s, NOISE_STREAM]) for s in seeds]
        for s, row in zip(seeds, envs, strict=True):
            for i, env in enumerate(row):
                env.action_space.seed(seed + 1000 * s + i + ACTION_SPACE_OFFSET)
        self.replay = TaskReplay(
            agent.obs_dim,
            agent.action_dim,
            t,
            meta.replay_capacity,
            context.history,
            seed=seed + first_seed,
            n_seeds=k,
            z_dim=context.z_dim,
        )
        self.sil_buffer = (
            SILBuffer(agent.obs_dim, agent.action_dim, sil.capacity, context_dim=self._segment_size,
                      seed=seed + first_seed, n_seeds=k, alpha=sil.alpha, beta=sil.beta, z_dim=context.z_dim)
            if method.sil else None
        )  # fmt: skip
        self.sil_start = _longest_episode(envs) if method.sil else 0
        self.histories = [RecentReturns(t, meta.transfer) for _ in range(k)]
        self.features = torch.zeros(k, t, context.z_dim)
        self.translator_ready = np.zeros(k, bool)  # per seed: H fitted at least once (with PT)
        self.episode_start = np.zeros((k, t), np.int64)  # loop step at which each running episode began
        self.start_steps = 0
        self.sources = np.full((k, t), -1)  # the acting policy of each running episode: -1 learned, j transferred
        self.kinds = np.full((k, t), KINDS.index("random"))  # how it was chosen (KINDS)
        self.generators = [stream_generator(seed + s, "meta.fits") for s in seeds]  # C/F/H fits' batches
        self.base_seed, self.first_seed = seed, first_seed
        self.streams = Streams(envs, context.history, seed + 1000 * np.array(seeds)[:, None] + np.arange(t)[None, :])
        self.episodes: list[list[list[tuple]]] = [[[] for _ in range(t)] for _ in range(k)]  # SIL: (obs, a, r, z)
        self.step = 0
        self.transferred_episodes = 0
        self.episode_log: list[tuple] = []  # one protocol.EPISODE_COLUMNS row per finished training episode

    @torch.no_grad()
    def _policy_actions(self) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic actions [K, T, act] of each running episode's acting policy, and the online z."""
        obs = torch.as_tensor(self.streams.obs)
        z = encode(self.models, self.streams.segment)
        actions = self.agent.act(obs, z)
        transferred = self.sources >= 0
        if transferred.any():
            source = torch.as_tensor(np.where(transferred, self.sources, 0))
            z_src = torch.stack([self.features[k][source[k]] for k in range(self.n_seeds)])
            z_tgt = self.features
            source_actions = self.agent.act(obs, z_src)
            translated = torch.stack(
                [m.translator(obs[k], source_actions[k], z_src[k], z_tgt[k]) for k, m in enumerate(self.models)]
            )
            actions = torch.where(torch.as_tensor(transferred)[..., None], translated, actions)
        return actions.numpy(), z.numpy()

    def act(self) -> np.ndarray:
        """Exploration actions [K, T, act] for this step: Gaussian noise on the acting policy's, none during a
        trial transfer (unless `meta.transfer.trial_noise`)."""
        if self.step < self.start_steps:
            return np.stack([[env.action_space.sample() for env in row] for row in self.envs]).astype(np.float32)
        actions, _ = self._policy_actions()
        noise = np.stack([rng.normal(0.0, self.noise_std, actions.shape[1:]) for rng in self.rngs])
        if not self.meta.transfer.trial_noise:
            noise = np.where((self.kinds == KINDS.index("trial"))[..., None], 0.0, noise)
        return np.clip(actions + noise, self.low, self.high).astype(np.float32)

    def _end_episode(self, k: int, i: int, received: float) -> None:
        """Book the finished episode of seed k on task i and pick the policy of its next episode.

        Episodes begun during the random start steps say nothing about a policy: not recorded by the rule.
        The transfer rule's clock is env steps of all tasks (its `max_age` is per task x tasks)."""
        env_steps = self.step * self.n_tasks
        source, kind = int(self.sources[k, i]), KINDS[self.kinds[k, i]]
        if self.episode_start[k, i] < self.start_steps:
            kind = "random"
        elif kind == "random":  # the first episode of a stream, begun before the start steps were known
            kind = "learned"
        learned_mean = self.histories[k].mean(i, LEARNED, env_steps)
        self.episode_log.append((env_steps, self.base_seed + self.first_seed + k, i,
                                 "learned" if source < 0 else str(source), kind, float(received),
                                 "" if learned_mean is None else learned_mean))  # fmt: skip
        if self.episode_start[k, i] >= self.start_steps:
            self.histories[k].record(i, LEARNED if source < 0 else source, received, env_steps)
        keep = self.sil.source is SILSource.all or source >= 0
        if self.sil_buffer is not None and self.episodes[k][i] and keep:
            obs, actions, rewards, segments = (np.stack(x) for x in zip(*self.episodes[k][i], strict=True))
            self.sil_buffer.add_episode(k, obs, actions, rewards, self.agent.config.discount, segments)
        self.episodes[k][i] = []
        self.episode_start[k, i] = self.step
        choice = Choice(LEARNED, "learned" if self.step >= self.start_steps else "random")
        if self.method.transfer and self.translator_ready[k] and self.step >= self.start_steps:
            choice = choose_policy(self.histories[k], i, env_steps)
        self.sources[k, i] = -1 if choice.source is None else choice.source
        self.kinds[k, i] = KINDS.index(choice.kind)
        self.transferred_episodes += choice.source is not None

    def _train(self) -> dict[str, float]:
        agent = self.agent
        encoders = [m.encoder for m in self.models]
        batch = self.replay.sample_encoded(agent.config.batch_size, encoders)
        agent.train(Batch(batch.obs, batch.action, batch.reward, batch.next_obs, batch.not_done, batch.z, batch.next_z))
        losses = {name: float(value) for name, value in agent.last_losses.items()}
        # with sil.source `transferred` a seed's buffer may still be empty: SIL then waits for every seed of the
        # batch (the one place where batched seeds depend on each other)
        if self.sil_buffer is not None and self.step >= self.sil_start and min(self.sil_buffer.sizes) > 0:
            for _ in range(self._sil_updates_due()):
                sil_batch = self.sil_buffer.sample(self.sil.batch_size, encoders)  # today's C, not the acting-time z
                actor_loss, critic_loss, advantages = sil_losses(agent, sil_batch, self.sil)
                agent.critic_optimizer.zero_grad(set_to_none=True)
                agent.actor_optimizer.zero_grad(set_to_none=True)
                (actor_loss + critic_loss).backward()
                agent.step_optimizers()
                self.sil_buffer.update_priorities(sil_batch.indices, advantages)
                losses |= {"sil_actor": float(actor_loss.detach()), "sil_critic": float(critic_loss.detach())}
        return losses

    def _sil_updates_due(self) -> int:
        """SIL updates after this TD3 update: `updates_per_step` spread evenly over TD3's update count."""
        n, rate = self.agent.total_it, self.sil.updates_per_step
        return math.floor(n * rate) - math.floor((n - 1) * rate)

    def retrain(self, progress: bool = False) -> None:
        """C and F (and H with PT) of every seed on its replay: the paper's schedule, every `retrain_every` steps."""
        schedule = Schedule(self.meta.retrain_epochs, self.retrain_updates)
        history, future = self.context.history, self.forward.future_steps
        for k, m in enumerate(self.models):
            data = [self.replay.task_data(k, i) for i in range(self.n_tasks)]
            try:
                windows = [Windows(d, history, future) for d in data]
            except ValueError:
                continue  # a task of this seed has no episode of history + future steps yet: next retrain
            g = self.generators[k]
            fit_context_and_forward(m.encoder, m.forward, windows, self.context, self.forward, schedule, generator=g,
                                    progress=progress)  # fmt: skip
            self.features[k] = task_features(m.encoder, windows, self.context.feature_segments, g)
            if self.method.transfer:
                fit_translator(m.translator, m.forward, data, self.translator, schedule, generator=g,
                               features=self.features[k], progress=progress)  # fmt: skip
                self.translator_ready[k] = True
        encoders = [m.encoder for m in self.models]
        self.replay.refresh_contexts(encoders)
        if self.sil_buffer is not None:
            self.sil_buffer.refresh_contexts(encoders)

    def train(self, steps: int) -> None:
        """`steps` more loop steps (act, step every env, store, update, refit when due)."""
        active = np.ones((self.n_seeds, self.n_tasks), bool)
        for _ in range(steps):
            self._loop_step(active)

    def _loop_step(self, active: np.ndarray) -> None:
        actions = self.act()
        streams = self.streams
        obs, episode, segment = streams.obs.copy(), streams.episode.copy(), streams.segment.copy()
        rewards, next_obs, terminated, ended = streams.step(actions, active)
        if not (np.isfinite(next_obs).all() and np.isfinite(rewards).all()):
            raise NonFiniteError(f"non-finite observation or reward at env step {(self.step + 1) * self.n_tasks}")
        self.replay.add(obs, actions, rewards, next_obs, terminated, episode, [m.encoder for m in self.models])
        if self.sil_buffer is not None:
            for k in range(self.n_seeds):
                for i in range(self.n_tasks):
                    self.episodes[k][i].append((obs[k, i], actions[k, i], rewards[k, i], segment[k, i].ravel()))
        self.step += 1
        for done in streams.advance(actions, next_obs, active, ended):
            self._end_episode(done.seed, done.task, done.received)
        if self.step > self.start_steps:
            for _ in range(self.n_tasks):  # one update per env step of each task (docs/algorithms/mcat.md)
                losses = self._train()
                if not all(np.isfinite(v) for v in losses.values()):
                    raise NonFiniteError(f"non-finite loss {losses} at env step {self.step * self.n_tasks}")
        if self.step % self.retrain_every == 0:
            self.retrain()

    def run(
        self,
        steps: int,
        *,
        start_steps: int,
        eval_every: int,
        evaluate: Callable[[int], None],
        progress: bool = True,
        checkpoint: Callable[[], None] | None = None,
        checkpoint_every: int = 0,
    ) -> None:
        """Train until `steps` loop steps; `evaluate(step)` at 0, every `eval_every` and at the end;
        `checkpoint()` (save a resume state) every `checkpoint_every` steps before the last. (Stage meta_train
        drives `train` itself, in the same order.)"""
        self.start_steps = start_steps
        if self.step == 0:
            evaluate(0)
        bar = tqdm(total=steps, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True, mininterval=1)
        active = np.ones((self.n_seeds, self.n_tasks), bool)
        while self.step < steps:
            self._loop_step(active)
            if self.step % eval_every == 0 or self.step == steps:
                evaluate(self.step)
            if (
                checkpoint is not None
                and checkpoint_every > 0
                and self.step % checkpoint_every == 0
                and self.step < steps
            ):
                checkpoint()
            bar.update(1)
        bar.close()

    def evaluate(
        self, envs: Sequence[Sequence[gymnasium.Env]], episodes: int, reset_seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Dense and delayed returns [K, T] of the deterministic policy, its context inferred online
        (`evaluate_contextual`)."""
        return evaluate_contextual(self.agent, self.models, envs, episodes, reset_seed, self.context.history)

    def finished_episodes(self) -> list[tuple]:
        """The protocol.EPISODE_COLUMNS rows of the finished training episodes."""
        return list(self.episode_log)

    def save_state(self, folder: Path) -> None:
        save_meta_state(folder, self)

    def load_state(self, folder: Path) -> None:
        load_meta_state(folder, self)

    def embeddings(self) -> tuple[list[str], list[tuple]]:
        """z = C(segment) of EMBEDDING_SEGMENTS context segments per seed and training task, from the final
        replay (App. D.5); this trainer's seed k is the run's seed index `first_seed + k`."""
        rows = []
        for s, models in enumerate(self.models, start=self.first_seed):
            generator = stream_generator(self.base_seed + s, "meta.embedding_segments")
            for i in range(self.n_tasks):
                try:
                    windows = Windows(self.replay.task_data(s - self.first_seed, i), self.context.history, 1)
                except ValueError:
                    continue  # no episode longer than the context yet
                with torch.no_grad():
                    z = models.encoder(windows.contexts(EMBEDDING_SEGMENTS, generator))
                rows += [(self.base_seed + s, i, *(f"{v:.5g}" for v in row)) for row in z.tolist()]
        return [f"z{j}" for j in range(self.context.z_dim)], rows
