"""MCAT meta-training (paper Sec. 3.4): context TD3 + self-imitation + policy transfer, K seeds at once.

One loop serves the three methods, which differ by two switches (`MethodSpec`): policy transfer
(PT: the transfer rule may make another task's policy act on a task, through the action
translator H) and self-imitation learning (SIL). Per env step, for every seed k and training
task i in lockstep:

1. act: π_k(s, z) with z = C_k(the episode's last K_h (Δs, a)) or, when the transfer rule chose
   source j for this episode, H_k(s, π_k(s, z_k(j)), z_k(j), z_k(i)) with the task features
   z_k(·); plus Gaussian exploration noise; uniform random actions for the first `start_steps`;
2. store the transition with its context segment in the task's replay; at an episode's end,
   record its return for the transfer rule and (with SIL) the episode for self-imitation;
3. one TD3 update of every seed on a batch drawn uniformly over tasks, contexts from C (fixed
   here), and the SIL updates;
4. every `retrain_every` steps: C and F on the replay (L_forw + L_cont), the task features and,
   with PT, H through the frozen F (design.md section 3).

Rewards are what the envs emit (the caller delays them); evaluation reports the dense and the
delayed return of the deterministic policy with its context inferred online from its own history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import gymnasium
import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.agents.sil import SILBuffer, SILConfig, sil_losses
from pipeline.agents.td3 import TD3
from pipeline.data.replay import Batch
from pipeline.guards import NonFiniteError
from pipeline.meta.config import METHOD_NAMES, MetaConfig
from pipeline.meta.streams import Streams
from pipeline.meta.task_replay import TaskReplay
from pipeline.meta.transfer_rule import LEARNED, RecentReturns, choose_policy
from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig
from pipeline.models.context import ContextEncoder
from pipeline.models.epochs import Schedule
from pipeline.models.forward import GaussianForwardModel
from pipeline.models.translator import ActionTranslator
from pipeline.transfer.fit import fit_context_and_forward, fit_translator, task_features
from pipeline.transfer.windows import Windows


class MethodSpec(NamedTuple):
    transfer: bool  # policy transfer through the action translator
    sil: bool  # self-imitation learning


# The `method` key of meta-training. A baseline (MQL, PEARL, ...) is a new module with its own loop
# and an entry in pipeline.meta.methods; these three share this one.
METHODS = {
    "mcat": MethodSpec(transfer=True, sil=True),
    "mcat_no_pt": MethodSpec(transfer=False, sil=True),  # Table 3's "MCAT w/o PT"
    "mcat_no_sil": MethodSpec(transfer=True, sil=False),  # the SIL ablation (App. D.4)
}
assert tuple(METHODS) == METHOD_NAMES


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


class MetaTrainer:
    """The loop's state; `run` drives it. envs[k][i]: seed k's env of training task i (rewards delayed)."""

    def __init__(
        self,
        agent: TD3,
        models: Sequence[SeedModels],
        envs: Sequence[Sequence[gymnasium.Env]],
        method: MethodSpec,
        *,
        meta: MetaConfig,
        context: ContextConfig,
        forward: ForwardModelConfig,
        translator: TranslatorConfig,
        sil: SILConfig,
        retrain_every: int,
        retrain_updates: int,
        seed: int,
    ):
        """`retrain_every`: loop steps between fits of C, F (and H); `retrain_updates`: updates per epoch."""
        k, t = len(envs), len(envs[0])
        if agent.n_seeds != k or len(models) != k or agent.context_dim != context.z_dim:
            raise ValueError(f"agent ({agent.n_seeds} seeds, context {agent.context_dim}) and models ({len(models)}) "
                             f"must match {k} seeds of envs and z_dim {context.z_dim}")  # fmt: skip
        self.agent, self.models, self.envs, self.method = agent, list(models), envs, method
        self.meta, self.context, self.forward, self.translator, self.sil = meta, context, forward, translator, sil
        self.n_seeds, self.n_tasks = k, t
        self.retrain_every, self.retrain_updates = retrain_every, retrain_updates
        space = envs[0][0].action_space
        self.low, self.high = space.low, space.high
        self.noise_std = agent.config.expl_noise * (self.high - self.low) / 2
        self.rngs = [np.random.default_rng(seed + s) for s in range(k)]
        for s, row in enumerate(envs):
            for i, env in enumerate(row):
                env.action_space.seed(seed + 1000 * s + i)
        self.replay = TaskReplay(
            agent.obs_dim, agent.action_dim, t, meta.replay_capacity, context.history, seed=seed, n_seeds=k
        )
        self.sil_buffer = (
            SILBuffer(agent.obs_dim, agent.action_dim, sil.capacity, context_dim=context.z_dim, seed=seed + 500,
                      n_seeds=k, alpha=sil.alpha, beta=sil.beta)
            if method.sil else None
        )  # fmt: skip
        self.histories = [RecentReturns(t, meta.transfer) for _ in range(k)]
        self.features = torch.zeros(k, t, context.z_dim)
        self.translator_ready = False
        self.sources = np.full((k, t), -1)  # the acting policy of each running episode: -1 learned, j transferred
        self.generators = [torch.Generator().manual_seed(seed + 2000 + s) for s in range(k)]
        self.streams = Streams(envs, context.history, seed + 1000 * np.arange(k)[:, None] + np.arange(t)[None, :])
        self.episodes: list[list[list[tuple]]] = [[[] for _ in range(t)] for _ in range(k)]  # SIL: (obs, a, r, z)
        self.step = 0
        self.transferred_episodes = 0

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

    def act(self, start_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Exploration actions [K, T, act] for this step, and the online contexts [K, T, z]."""
        if self.step < start_steps:
            actions = np.stack([[env.action_space.sample() for env in row] for row in self.envs])
            return actions.astype(np.float32), encode(self.models, self.streams.segment).numpy()
        actions, z = self._policy_actions()
        noise = np.stack([rng.normal(0.0, self.noise_std, actions.shape[1:]) for rng in self.rngs])
        return np.clip(actions + noise, self.low, self.high).astype(np.float32), z

    def _end_episode(self, k: int, i: int, received: float) -> None:
        source = int(self.sources[k, i])
        self.histories[k].record(i, LEARNED if source < 0 else source, received, self.step)
        if self.sil_buffer is not None and self.episodes[k][i]:
            obs, actions, rewards, contexts = (np.stack(x) for x in zip(*self.episodes[k][i], strict=True))
            self.sil_buffer.add_episode(k, obs, actions, rewards, self.agent.config.discount, contexts)
        self.episodes[k][i] = []
        choice = None
        if self.method.transfer and self.translator_ready:
            choice = choose_policy(self.histories[k], i, self.step)
        self.sources[k, i] = -1 if choice is None else choice
        self.transferred_episodes += choice is not None

    def _train(self) -> dict[str, float]:
        agent = self.agent
        batch = self.replay.sample(agent.config.batch_size)
        z, next_z = encode(self.models, batch.history), encode(self.models, batch.next_history)
        agent.train(Batch(batch.obs, batch.action, batch.reward, batch.next_obs, batch.not_done, z, next_z))
        losses = {name: float(value) for name, value in agent.last_losses.items()}
        if self.sil_buffer is not None and min(self.sil_buffer.sizes) > 0:
            for _ in range(self.sil.updates_per_step):
                sil_batch = self.sil_buffer.sample(self.sil.batch_size)
                actor_loss, critic_loss, advantages = sil_losses(agent, sil_batch, self.sil)
                agent.critic_optimizer.zero_grad(set_to_none=True)
                agent.actor_optimizer.zero_grad(set_to_none=True)
                (actor_loss + critic_loss).backward()
                agent.critic_optimizer.step()
                agent.actor_optimizer.step()
                self.sil_buffer.update_priorities(sil_batch.indices, advantages)
                losses |= {"sil_actor": float(actor_loss.detach()), "sil_critic": float(critic_loss.detach())}
        return losses

    def retrain(self, progress: bool = False) -> None:
        """C and F (and H with PT) of every seed on its replay: the paper's schedule, every `retrain_every` steps."""
        schedule = Schedule(self.meta.retrain_epochs, self.retrain_updates)
        history, future = self.context.history, self.forward.future_steps
        for k, m in enumerate(self.models):
            data = [self.replay.task_data(k, i) for i in range(self.n_tasks)]
            try:
                windows = [Windows(d, history, future) for d in data]
            except ValueError:
                return  # no task has an episode of history + future steps yet: try at the next retrain
            g = self.generators[k]
            fit_context_and_forward(m.encoder, m.forward, windows, self.context, self.forward, schedule, generator=g,
                                    progress=progress)  # fmt: skip
            self.features[k] = task_features(m.encoder, windows, self.context.feature_segments, g)
            if self.method.transfer:
                fit_translator(m.translator, m.forward, data, self.translator, schedule, generator=g,
                               features=self.features[k], progress=progress)  # fmt: skip
        self.translator_ready = self.method.transfer

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
        `checkpoint()` (save a resume state) every `checkpoint_every` steps before the last."""
        if self.step == 0:
            evaluate(0)
        bar = tqdm(total=steps, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True, mininterval=1)
        active = np.ones((self.n_seeds, self.n_tasks), bool)
        while self.step < steps:
            actions, z = self.act(start_steps)
            streams = self.streams
            obs, segment, episode = streams.obs.copy(), streams.segment.copy(), streams.episode.copy()
            rewards, next_obs, terminated, ended = streams.step(actions, active)
            if not (np.isfinite(next_obs).all() and np.isfinite(rewards).all()):
                raise NonFiniteError(f"non-finite observation or reward at env step {self.step + 1}")
            self.replay.add(obs, actions, rewards, next_obs, terminated, segment, episode)
            if self.sil_buffer is not None:
                for k in range(self.n_seeds):
                    for i in range(self.n_tasks):
                        self.episodes[k][i].append((obs[k, i], actions[k, i], rewards[k, i], z[k, i]))
            self.step += 1
            for done in streams.advance(actions, next_obs, active, ended):
                self._end_episode(done.seed, done.task, done.received)
            if self.step > start_steps:
                losses = self._train()
                if not all(np.isfinite(v) for v in losses.values()):
                    raise NonFiniteError(f"non-finite loss {losses} at env step {self.step}")
            if self.step % self.retrain_every == 0:
                self.retrain()
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
