"""PEARL (Rakelly et al. 2019) in the meta_train harness: SAC on (s, z), z from a probabilistic context encoder.

Per loop step, for every seed k and training task i in lockstep (docs/algorithms/pearl.md):

1. act: a ~ pi_k(s, z) with the episode's z (uniform random actions for the first `start_steps`);
   episodes of a task alternate between z ~ N(0, I) ("prior": their transitions also go to the task's
   encoder buffer) and z ~ q_k(z | a context of `context_batch` transitions of that buffer)
   ("posterior"), oyster's num_steps_prior / num_extra_rl_steps_posterior rounds in one stream;
2. store the transition (delayed reward, as the env emits it) in the task's replay;
3. `updates_per_env_step` x T gradient steps (spread evenly); each, per seed: a context of every
   training task from its encoder buffer -> posterior -> z (reparameterised); critics on
   (s, a, z) with `batch_size` replay rows of every task, loss + `kl_weight` x KL(q || N(0, I)) also
   training the encoder; actor and temperature on (s, z) with z detached (oyster).

Evaluation on a task (train or test): `exploration_episodes` episodes gather context (the first with
z from the prior, each next with z from the posterior of all the context so far), then the scored
episode with z from the final posterior; deterministic actions throughout (oyster's eval).
`PEARLLearner` implements `pipeline.methods.protocol.MetaLearner`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from pipeline.agents.sac import SAC
from pipeline.envs.state import get_env_states, set_env_states
from pipeline.guards import NonFiniteError
from pipeline.methods.pearl.buffers import TaskBatch, TaskBuffers
from pipeline.methods.pearl.config import PEARLConfig
from pipeline.methods.pearl.encoder import ContextEncoder, kl_to_standard_normal
from pipeline.methods.protocol import Grid
from pipeline.seeding import stream_generator

ACTION_SPACE_OFFSET = 500  # random start actions of env (k, i): seed + 1000 k + i + this (resets: without it)
EMBEDDING_CONTEXTS = 50  # posterior means per (seed, task) in embeddings.csv


class PEARLLearner:
    """K seeds x T training tasks of PEARL; `step` counts loop steps."""

    def __init__(self, envs: Grid, config: PEARLConfig, *, seed: int, first_seed: int, steps: int, start_steps: int):
        """envs[k][i]: the run's seed `first_seed + k`'s env of training task i (rewards delayed)."""
        self.envs, self.config = envs, config
        k, t = len(envs), len(envs[0])
        self.n_seeds, self.n_tasks, self.start_steps = k, t, start_steps
        space = envs[0][0].action_space
        self.obs_dim, self.action_dim = envs[0][0].observation_space.shape[0], space.shape[0]
        self.context_dim = (2 if config.use_next_obs else 1) * self.obs_dim + self.action_dim + 1  # (s, a, r[, s'])
        seeds = list(range(first_seed, first_seed + k))  # this learner's seeds, as the run numbers them
        self.base_seed, self.first_seed = seed, first_seed
        self.agent = SAC(self.obs_dim, self.action_dim, space.low, space.high, config.sac,
                         context_dim=config.latent_dim, seed=seed + first_seed, n_seeds=k)  # fmt: skip
        self.encoder = ContextEncoder(k, self.context_dim, config.latent_dim, config.encoder_hidden,
                                      config.encoder_layers, seed=seed + first_seed)  # fmt: skip
        self.encoder_optimizer = torch.optim.Adam(self.encoder.parameters(), lr=config.encoder_lr)
        self.replay = TaskBuffers(k, t, min(config.replay_capacity, max(1, steps)), self.obs_dim, self.action_dim)
        self.contexts = TaskBuffers(k, t, config.encoder_capacity, self.obs_dim, self.action_dim)
        self.batch_generators = [stream_generator(seed + s, "pearl.batches") for s in seeds]
        self.z_generators = [stream_generator(seed + s, "pearl.z") for s in seeds]
        for s, row in zip(seeds, envs, strict=True):
            for i, env in enumerate(row):
                env.action_space.seed(seed + 1000 * s + i + ACTION_SPACE_OFFSET)
        self.obs = np.stack([[env.reset(seed=seed + 1000 * s + i)[0] for i, env in enumerate(row)]
                             for s, row in zip(seeds, envs, strict=True)]).astype(np.float32)  # fmt: skip
        self.prior = np.ones((k, t), bool)  # the running episode's z is from the prior (else the posterior)
        self.z = self._prior_z(self.z_generators, (t,))
        self.received = np.zeros((k, t))  # running episodes' returns, as the agent saw them
        self.episode_start = np.zeros((k, t), np.int64)
        self.step = 0
        self.episode_log: list[tuple] = []

    # -- acting ------------------------------------------------------------------------------------------------

    def _prior_z(self, generators: Sequence[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
        """z ~ N(0, I) for each seed: [K, *shape, latent]."""
        return torch.stack([torch.randn(*shape, self.config.latent_dim, generator=g) for g in generators])

    def _context(self, batch: TaskBatch) -> torch.Tensor:
        """Context transitions (s, a, r[, s']) of a batch: [K, T, N, context_dim]."""
        parts = [batch.obs, batch.action, batch.reward.unsqueeze(-1)]
        return torch.cat([*parts, batch.next_obs] if self.config.use_next_obs else parts, -1)

    @torch.no_grad()
    def _sample_posterior(self, k: int, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A z [latent] from seed k's posterior given one context [N, context_dim]."""
        mean, variance = self.encoder(context[None, None], members=slice(k, k + 1))
        return mean[0, 0] + variance[0, 0].sqrt() * torch.randn(self.config.latent_dim, generator=generator)

    def _posterior_z(self, task: int, k: int) -> torch.Tensor:
        """A z from seed k's posterior given `context_batch` transitions of task's encoder buffer."""
        batch = self.contexts.sample_stream(k, task, self.config.context_batch, self.batch_generators[k])
        return self._sample_posterior(k, self._context(batch)[0, 0], self.z_generators[k])

    def act(self) -> np.ndarray:
        """Actions [K, T, act]: uniform random during the start steps, else a sample of pi(s, z)."""
        if self.step < self.start_steps:
            return np.stack([[env.action_space.sample() for env in row] for row in self.envs]).astype(np.float32)
        return self.agent.act(torch.from_numpy(self.obs), self.z, deterministic=False).numpy()

    def _end_episode(self, k: int, i: int) -> None:
        """Log the finished episode and draw the next one's z: the other kind (prior <-> posterior)."""
        kind = "random" if self.episode_start[k, i] < self.start_steps else "learned"
        self.episode_log.append((self.step * self.n_tasks, self.base_seed + self.first_seed + k, i, "learned", kind,
                                 float(self.received[k, i]), ""))  # fmt: skip
        self.received[k, i] = 0.0
        self.episode_start[k, i] = self.step
        self.prior[k, i] = not self.prior[k, i]
        if self.prior[k, i] or self.contexts.size[k, i] == 0:
            self.prior[k, i] = True
            self.z[k, i] = torch.randn(self.config.latent_dim, generator=self.z_generators[k])
        else:
            self.z[k, i] = self._posterior_z(i, k)

    # -- training ----------------------------------------------------------------------------------------------

    def train(self, steps: int) -> None:
        for _ in range(steps):
            self._loop_step()

    def _loop_step(self) -> None:
        actions = self.act()
        k, t = self.n_seeds, self.n_tasks
        next_obs = np.empty_like(self.obs)
        rewards, terminated, ended = np.zeros((k, t)), np.zeros((k, t), bool), np.zeros((k, t), bool)
        for s, row in enumerate(self.envs):
            for i, env in enumerate(row):
                obs, rewards[s, i], terminated[s, i], truncated, _ = env.step(actions[s, i])
                next_obs[s, i], ended[s, i] = obs, terminated[s, i] or truncated
        if not (np.isfinite(next_obs).all() and np.isfinite(rewards).all()):
            raise NonFiniteError(f"non-finite observation or reward at env step {(self.step + 1) * t}")
        everywhere = np.ones((k, t), bool)
        self.replay.add(everywhere, self.obs, actions, rewards, next_obs, terminated)
        self.contexts.add(self.prior, self.obs, actions, rewards, next_obs, terminated)
        self.received += rewards
        self.obs = next_obs
        self.step += 1
        for s, i in zip(*np.nonzero(ended), strict=True):
            self.obs[s, i] = self.envs[s][i].reset()[0]
            self._end_episode(int(s), int(i))
        if self.step > self.start_steps:
            for _ in range(self._updates_due()):
                losses = self._update()
                if not all(math.isfinite(v) for v in losses.values()):
                    raise NonFiniteError(f"non-finite loss {losses} at env step {self.step * t}")

    def _updates_due(self) -> int:
        """Gradient steps after this loop step: `updates_per_env_step` x T, spread evenly over loop steps."""
        n = self.step - self.start_steps
        rate = Fraction(str(self.config.updates_per_env_step)) * self.n_tasks  # exact: 0.7 x 3 is not 2.0999...
        return math.floor(n * rate) - math.floor((n - 1) * rate)

    def _update(self) -> dict[str, float]:
        """One PEARL gradient step of every seed on every training task (see the module docstring)."""
        config, agent = self.config, self.agent
        k, t, b = self.n_seeds, self.n_tasks, config.sac.batch_size
        context = self._context(self.contexts.sample(config.context_batch, self.batch_generators))
        batch = self.replay.sample(b, self.batch_generators)
        mean, variance = self.encoder(context)  # [K, T, latent]
        noise = torch.stack([torch.randn(t, config.latent_dim, generator=g) for g in self.z_generators])
        z = (mean + variance.sqrt() * noise).unsqueeze(2).expand(k, t, b, config.latent_dim)
        kl = kl_to_standard_normal(mean, variance).sum()  # over tasks and seeds: each seed its own gradient

        def flat(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(k, t * b, *x.shape[3:])

        state = flat(torch.cat([batch.obs, z], -1))
        next_state = flat(torch.cat([batch.next_obs, z.detach()], -1))
        reward = flat(batch.reward) * config.reward_scale
        critic_loss = agent.critic_loss(state, flat(batch.action), reward, next_state, flat(batch.not_done))
        agent.critic_optimizer.zero_grad(set_to_none=True)
        self.encoder_optimizer.zero_grad(set_to_none=True)
        # critic_loss is half the twins' summed MSE (SB3's scale), oyster's qf_loss the full sum: the KL's weight
        # is halved so that the encoder sees oyster's ratio of the two (the critics' Adam step ignores the scale)
        (critic_loss + 0.5 * config.kl_weight * kl).backward()
        agent.critic_optimizer.step()
        self.encoder_optimizer.step()
        agent.total_it += 1
        policy = agent.step_policy(state.detach())
        losses = {"critic": critic_loss.detach(), "kl": kl.detach(), **policy}
        return {name: float(value) for name, value in losses.items()}

    # -- evaluation --------------------------------------------------------------------------------------------

    def evaluate(self, envs: Grid, episodes: int, reset_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense and delayed returns [K, T] of the scored episode after `exploration_episodes` episodes that
        gather context (module docstring); episode e's first exploration episode reset with `reset_seed + e`.
        Evaluation draws its z from its own generators, so it leaves training's streams untouched."""
        k, t = len(envs), len(envs[0])
        generators = [stream_generator(reset_seed + self.base_seed + self.first_seed + s, "pearl.eval")
                      for s in range(k)]  # fmt: skip
        dense, delayed = np.zeros((k, t)), np.zeros((k, t))
        for episode in range(episodes):
            context: list[list[list[np.ndarray]]] = [[[] for _ in range(t)] for _ in range(k)]
            z = self._prior_z(generators, (t,))
            for phase in range(self.config.exploration_episodes + 1):
                seed = reset_seed + episode if phase == 0 else None
                ep_dense, ep_delayed = self._rollout(envs, z, seed, context)
                if phase < self.config.exploration_episodes:
                    z = self._eval_posterior(context, generators)
            dense += ep_dense
            delayed += ep_delayed
        return dense / episodes, delayed / episodes

    @torch.no_grad()
    def _rollout(self, envs: Grid, z: torch.Tensor, reset_seed: int | None,
                 context: list[list[list[np.ndarray]]]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """One deterministic episode on every env with z [K, T, latent]; appends its transitions to `context`."""
        k, t = len(envs), len(envs[0])
        obs = np.stack([[env.reset(seed=reset_seed)[0] for env in row] for row in envs]).astype(np.float32)
        dense, delayed = np.zeros((k, t)), np.zeros((k, t))
        running = np.ones((k, t), bool)
        while running.any():
            actions = self.agent.act(torch.from_numpy(obs), z, deterministic=True).numpy()
            for s, i in zip(*np.nonzero(running), strict=True):
                next_obs, reward, terminated, truncated, info = envs[s][i].step(actions[s, i])
                dense[s, i] += info["dense_reward"]
                delayed[s, i] += reward
                step = [obs[s, i], actions[s, i], [reward]] + ([next_obs] if self.config.use_next_obs else [])
                context[s][i].append(np.concatenate(step).astype(np.float32))
                obs[s, i] = next_obs
                running[s, i] = not (terminated or truncated)
        return dense, delayed

    def _eval_posterior(self, context: list[list[list[np.ndarray]]], generators: list[torch.Generator]) -> torch.Tensor:
        """A z [K, T, latent] from each stream's posterior given all of its context so far."""
        z = torch.empty(len(context), len(context[0]), self.config.latent_dim)
        for s, row in enumerate(context):
            for i, steps in enumerate(row):
                z[s, i] = self._sample_posterior(s, torch.from_numpy(np.stack(steps)), generators[s])
        return z

    # -- outputs and resume --------------------------------------------------------------------------------------

    def finished_episodes(self) -> list[tuple]:
        return list(self.episode_log)

    def embeddings(self) -> tuple[list[str], list[tuple]]:
        """Posterior means of EMBEDDING_CONTEXTS contexts per seed and training task, from the encoder buffers."""
        generators = [stream_generator(self.base_seed + s, "pearl.embedding_contexts")
                      for s in range(self.first_seed, self.first_seed + self.n_seeds)]  # fmt: skip
        rows = []
        with torch.no_grad():
            means = [self.encoder(self._context(self.contexts.sample(self.config.context_batch, generators)))[0]
                     for _ in range(EMBEDDING_CONTEXTS)]  # fmt: skip
        for s in range(self.n_seeds):
            seed = self.base_seed + self.first_seed + s
            for i in range(self.n_tasks):
                rows += [(seed, i, *(f"{v:.5g}" for v in m[s, i].tolist())) for m in means]
        return [f"z{j}" for j in range(self.config.latent_dim)], rows

    def save_state(self, folder: Path) -> None:
        torch.save(
            {
                "agent": self.agent.state_dict(),
                "encoder": self.encoder.state_dict(),
                "encoder_optimizer": self.encoder_optimizer.state_dict(),
                "z": self.z,
                "generators": [g.get_state() for g in (*self.batch_generators, *self.z_generators)],
            },
            folder / "models.pt",
        )
        env_states, env_arrays = get_env_states([env for row in self.envs for env in row])
        buffers = self.replay.state_arrays("replay_") | self.contexts.state_arrays("context_")
        np.savez(folder / "buffers.npz", **buffers)
        np.savez(folder / "loop.npz", obs=self.obs, prior=self.prior, received=self.received,
                 episode_start=self.episode_start, **env_arrays)  # fmt: skip
        loop = {"step": self.step, "episode_log": self.episode_log, "envs": env_states}
        (folder / "loop.json").write_text(json.dumps(loop))

    def load_state(self, folder: Path) -> None:
        state = torch.load(folder / "models.pt", weights_only=True)
        self.agent.load_state_dict(state["agent"])
        self.encoder.load_state_dict(state["encoder"])
        self.encoder_optimizer.load_state_dict(state["encoder_optimizer"])
        self.z = state["z"].clone()
        for g, saved in zip((*self.batch_generators, *self.z_generators), state["generators"], strict=True):
            g.set_state(saved)
        with np.load(folder / "buffers.npz") as arrays:
            self.replay.load_state_arrays(dict(arrays), "replay_")
            self.contexts.load_state_arrays(dict(arrays), "context_")
        loop = json.loads((folder / "loop.json").read_text())
        with np.load(folder / "loop.npz") as arrays:
            saved = dict(arrays)
        set_env_states([env for row in self.envs for env in row], loop["envs"], saved)
        self.obs, self.prior, self.received = saved["obs"], saved["prior"], saved["received"]
        self.episode_start = saved["episode_start"]
        self.step = loop["step"]
        self.episode_log = [tuple(row) for row in loop["episode_log"]]
