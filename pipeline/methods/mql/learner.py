"""MQL (Fakoor et al. 2020) in the meta_train harness: multi-task TD3 with a GRU context, adapted at test time.

Per loop step, for every seed k and training task i in lockstep (docs/algorithms/mql.md):

1. act: pi_k(s, GRU(the episode's last `history` (a, r, s') steps)) + Gaussian noise `expl_noise`
   (uniform random actions for the first `start_steps`);
2. store the transition (delayed reward, as the env emits it) in seed k's replay, stream i;
3. T TD3 updates of every seed (one per env step) on batches drawn uniformly over the training tasks.

Evaluation: the training tasks (the first T columns of the stage's evaluation grid, which lists training
then test tasks) with the meta-trained policy; each test task, with `adaptation`, after the reference's
test-time adaptation: the policy runs `snapshot_episodes` episodes on the task, a logistic regression
separates their contexts from the replay's, then a copy of the agent takes `snapshot_updates` TD3 updates on
the snapshot and `replay_updates` propensity-weighted updates on the replay with a proximal term towards the
meta-trained weights, and acts in the scored episodes. The copy is discarded: evaluation changes nothing of
the training state. Seeds are separate models (their GRUs do not batch), each with its own random streams.
`MQLLearner` implements `pipeline.methods.protocol.MetaLearner`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium
import numpy as np
import torch

from pipeline.envs.state import get_env_states, set_env_states
from pipeline.guards import NonFiniteError
from pipeline.methods.mql.agent import MQLAgent
from pipeline.methods.mql.config import MQLConfig
from pipeline.methods.mql.propensity import fit_logistic, propensity
from pipeline.methods.mql.replay import HistoryReplay
from pipeline.methods.protocol import Grid
from pipeline.seeding import stream_generator

NOISE_STREAM = 103  # numpy seeds [seed, k, NOISE_STREAM]: exploration noise
ACTION_SPACE_OFFSET = 500  # random start actions of env (k, i): seed + 1000 k + i + this (resets: without it)


class Histories:
    """Running episodes' last `history` (a, r, s') steps, [N, H, step], zeros before the episode's start."""

    def __init__(self, n: int, history: int, step_dim: int):
        self.steps = np.zeros((n, history, step_dim), np.float32)

    def push(self, where: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray) -> None:
        step = np.concatenate([action, reward[:, None], next_obs], -1).astype(np.float32)
        shifted = np.concatenate([self.steps[:, 1:], step[:, None]], 1)
        self.steps = np.where(where[:, None, None], shifted, self.steps)

    def clear(self, i: int) -> None:
        self.steps[i] = 0.0


class MQLLearner:
    """K seeds x T training tasks of MQL; `step` counts loop steps."""

    def __init__(self, envs: Grid, config: MQLConfig, *, seed: int, first_seed: int, steps: int, start_steps: int):
        self.envs, self.config = envs, config
        k, t = len(envs), len(envs[0])
        self.n_seeds, self.n_tasks, self.start_steps = k, t, start_steps
        space = envs[0][0].action_space
        self.low, self.high = space.low, space.high
        self.obs_dim, self.action_dim = envs[0][0].observation_space.shape[0], space.shape[0]
        self.step_dim = self.action_dim + 1 + self.obs_dim
        seeds = list(range(first_seed, first_seed + k))  # this learner's seeds, as the run numbers them
        self.base_seed, self.first_seed = seed, first_seed
        self.agents = [MQLAgent(self.obs_dim, self.action_dim, self.low, self.high, config, seed + s) for s in seeds]
        capacity = min(config.replay_capacity, max(1, steps))
        self.replays = [HistoryReplay(t, capacity, self.obs_dim, self.action_dim, config.history) for _ in seeds]
        self.batch_generators = [stream_generator(seed + s, "mql.batches") for s in seeds]
        self.rngs = [np.random.default_rng([seed, s, NOISE_STREAM]) for s in seeds]
        for s, row in zip(seeds, envs, strict=True):
            for i, env in enumerate(row):
                env.action_space.seed(seed + 1000 * s + i + ACTION_SPACE_OFFSET)
        self.obs = np.stack([[env.reset(seed=seed + 1000 * s + i)[0] for i, env in enumerate(row)]
                             for s, row in zip(seeds, envs, strict=True)]).astype(np.float32)  # fmt: skip
        self.histories = Histories(k * t, config.history, self.step_dim)
        self.episode = np.zeros((k, t), np.int64)
        self.received = np.zeros((k, t))
        self.episode_start = np.zeros((k, t), np.int64)
        self.step = 0
        self.episode_log: list[tuple] = []

    # -- training ----------------------------------------------------------------------------------------------

    def _policy(self, agent: MQLAgent, obs: np.ndarray, history: np.ndarray) -> np.ndarray:
        return agent.act(torch.from_numpy(obs), torch.from_numpy(history)).numpy()

    def act(self) -> np.ndarray:
        """Actions [K, T, act]: uniform random during the start steps, else the policy plus Gaussian noise."""
        if self.step < self.start_steps:
            return np.stack([[env.action_space.sample() for env in row] for row in self.envs]).astype(np.float32)
        history = self.histories.steps.reshape(self.n_seeds, self.n_tasks, self.config.history, self.step_dim)
        std = self.config.expl_noise * (self.high - self.low) / 2
        actions = [self._policy(agent, self.obs[k], history[k]) + rng.normal(0.0, std, (self.n_tasks, self.action_dim))
                   for k, (agent, rng) in enumerate(zip(self.agents, self.rngs, strict=True))]  # fmt: skip
        return np.clip(np.stack(actions), self.low, self.high).astype(np.float32)

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
        for s, replay in enumerate(self.replays):
            replay.add(self.obs[s], actions[s], rewards[s], next_obs[s], terminated[s], self.episode[s])
        everywhere = np.ones(k * t, bool)
        self.histories.push(everywhere, actions.reshape(k * t, -1), rewards.reshape(-1), next_obs.reshape(k * t, -1))
        self.received += rewards
        self.obs = next_obs
        self.step += 1
        for s, i in zip(*np.nonzero(ended), strict=True):
            self.obs[s, i] = self.envs[s][i].reset()[0]
            self.histories.clear(s * t + i)
            kind = "random" if self.episode_start[s, i] < self.start_steps else "learned"
            self.episode_log.append((self.step * t, self.base_seed + self.first_seed + int(s), int(i), "learned", kind,
                                     float(self.received[s, i]), ""))  # fmt: skip
            self.episode[s, i] += 1
            self.received[s, i] = 0.0
            self.episode_start[s, i] = self.step
        if self.step > self.start_steps:
            for agent, replay, generator in zip(self.agents, self.replays, self.batch_generators, strict=True):
                for _ in range(t):  # one update per env step of each task
                    losses = agent.update(replay.sample(self.config.batch_size, generator))
                    if not all(math.isfinite(v) for v in losses.values()):
                        raise NonFiniteError(f"non-finite loss {losses} at env step {self.step * t}")

    # -- evaluation --------------------------------------------------------------------------------------------

    def evaluate(self, envs: Grid, episodes: int, reset_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense and delayed returns [K, columns]: training tasks (the first T columns) by the meta-trained
        policy, the others after test-time adaptation when `adaptation` (module docstring)."""
        k, columns = len(envs), len(envs[0])
        dense, delayed = np.zeros((k, columns)), np.zeros((k, columns))
        for s, (agent, row) in enumerate(zip(self.agents, envs, strict=True)):
            adapted = list(range(self.n_tasks, columns)) if self.config.adaptation else []
            plain = [c for c in range(columns) if c not in adapted]
            generator = stream_generator(reset_seed + self.base_seed + self.first_seed + s, "mql.adaptation")
            groups = [(agent, plain)] + [(self._adapt(s, row[c], generator, reset_seed), [c]) for c in adapted]
            for acting, cols in groups:
                if not cols:
                    continue
                for e in range(episodes):
                    d, r = self._rollout(acting, [row[c] for c in cols], reset_seed + e)
                    dense[s, cols] += d / episodes
                    delayed[s, cols] += r / episodes
        return dense, delayed

    def _rollout(
        self,
        agent: MQLAgent,
        envs: list[gymnasium.Env],
        reset_seed: int | None,
        record: HistoryReplay | None = None,
        episodes: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic episodes of `agent` on each env in lockstep, `episodes` one after another per env (the
        first reset with `reset_seed`); returns the summed dense and delayed returns per env. With `record`, the
        transitions go to that one-stream replay (one env)."""
        n = len(envs)
        obs = np.stack([env.reset(seed=reset_seed)[0] for env in envs]).astype(np.float32)
        history = Histories(n, self.config.history, self.step_dim)
        dense, delayed = np.zeros(n), np.zeros(n)
        running, episode = np.ones(n, bool), np.zeros(n, np.int64)
        while running.any():
            actions = self._policy(agent, obs, history.steps)
            rewards, next_obs = np.zeros(n), obs.copy()
            terminated, ended = np.zeros(n, bool), np.zeros(n, bool)
            for i in np.flatnonzero(running):
                next_obs[i], rewards[i], terminated[i], truncated, info = envs[i].step(actions[i])
                ended[i] = terminated[i] or truncated
                dense[i] += info["dense_reward"]
                delayed[i] += rewards[i]
            if record is not None:
                record.add(obs, actions, rewards, next_obs, terminated, episode)
            history.push(running, actions, rewards, next_obs)
            obs = np.where(running[:, None], next_obs, obs).astype(np.float32)
            for i in np.flatnonzero(ended):
                episode[i] += 1
                running[i] = episode[i] < episodes
                if running[i]:
                    obs[i] = envs[i].reset()[0]
                    history.clear(i)
        return dense, delayed

    def _adapt(self, s: int, env: gymnasium.Env, generator: torch.Generator, reset_seed: int) -> MQLAgent:
        """Seed s's agent adapted to `env`'s task (the reference's `adapt`), as a copy; the agent itself while its
        replay is empty (the evaluation before training)."""
        config, agent, replay = self.config, self.agents[s], self.replays[s]
        if replay.size == 0:
            return agent
        capacity = config.snapshot_episodes * env.spec.max_episode_steps  # make_env's envs have a time limit
        snapshot = HistoryReplay(1, capacity, self.obs_dim, self.action_dim, config.history)
        self._rollout(agent, [env], reset_seed - 1, record=snapshot, episodes=config.snapshot_episodes)
        new = snapshot.all_rows(0)
        per_task = snapshot.size // self.n_tasks + 2  # the reference's negatives per training task
        tasks = torch.arange(self.n_tasks).repeat_interleave(per_task)
        rows = torch.randint(replay.size, (len(tasks),), generator=generator)
        old = replay.rows(tasks, rows)
        with torch.no_grad():
            features = agent.actor.context(new.history), agent.actor.context(old.history)
        classifier = fit_logistic(*features, config.logistic_c)
        adapted = agent.clone(generator)
        for _ in range(config.snapshot_updates):
            adapted.update(new)
        for _ in range(config.replay_updates):
            batch = replay.sample(config.replay_batch_multiple * config.batch_size, generator)
            with torch.no_grad():
                weights = propensity(classifier, adapted.actor.context(batch.history), config.beta_clip)
            adapted.update(batch, weights=weights, anchor=agent)
        return adapted

    # -- outputs and resume --------------------------------------------------------------------------------------

    def finished_episodes(self) -> list[tuple]:
        return list(self.episode_log)

    def embeddings(self) -> tuple[list[str], list[tuple]]:
        """No task embedding of its own (MQL's context is a per-transition GRU state)."""
        return [], []

    def save_state(self, folder: Path) -> None:
        torch.save(
            {
                "agents": [agent.state_dict() for agent in self.agents],
                "generators": [g.get_state() for g in self.batch_generators],
            },
            folder / "models.pt",
        )
        replays = {f"seed{s}_{name}": v for s, r in enumerate(self.replays) for name, v in r.state_arrays().items()}
        np.savez(folder / "replay.npz", **replays)
        env_states, env_arrays = get_env_states([env for row in self.envs for env in row])
        np.savez(folder / "loop.npz", obs=self.obs, histories=self.histories.steps, episode=self.episode,
                 received=self.received, episode_start=self.episode_start, **env_arrays)  # fmt: skip
        loop = {"step": self.step, "episode_log": self.episode_log, "envs": env_states,
                "rngs": [rng.bit_generator.state for rng in self.rngs]}  # fmt: skip
        (folder / "loop.json").write_text(json.dumps(loop))

    def load_state(self, folder: Path) -> None:
        state = torch.load(folder / "models.pt", weights_only=True)
        for agent, saved in zip(self.agents, state["agents"], strict=True):
            agent.load_state_dict(saved)
        for g, saved in zip(self.batch_generators, state["generators"], strict=True):
            g.set_state(saved)
        with np.load(folder / "replay.npz") as arrays:
            for s, replay in enumerate(self.replays):
                prefix = f"seed{s}_"
                replay.load_state_arrays({n[len(prefix) :]: v for n, v in arrays.items() if n.startswith(prefix)})
        loop = json.loads((folder / "loop.json").read_text())
        with np.load(folder / "loop.npz") as arrays:
            saved = dict(arrays)
        set_env_states([env for row in self.envs for env in row], loop["envs"], saved)
        self.obs, self.histories.steps, self.episode = saved["obs"], saved["histories"], saved["episode"]
        self.received, self.episode_start = saved["received"], saved["episode_start"]
        for rng, saved_state in zip(self.rngs, loop["rngs"], strict=True):
            rng.bit_generator.state = saved_state
        self.step = loop["step"]
        self.episode_log = [tuple(row) for row in loop["episode_log"]]
