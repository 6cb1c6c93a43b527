"""Self-imitation learning (Oh et al. 2018) for the seed-batched TD3 agent, as MCAT uses it.

The agent's own finished episodes are stored with their discounted Monte-Carlo returns R.
A prioritized buffer (priority exponent alpha, importance-sampling exponent beta) replays the
transitions whose return beat the critic's value, keyed by the clipped advantage
adv = clip(R - V, 0, 1) with V = min_i Q_i(s, π(s)). The actor imitates the replayed actions
weighted by adv (a deterministic policy's log-likelihood is a squared distance); the critics are
pushed up toward R where R > Q. Everything carries TD3's leading seed dimension K: seed k
stores, samples and learns from its own episodes only.

`sil_losses` returns losses and steps nothing: add them to TD3's losses, or backward them and
step `agent.actor_optimizer` / `agent.critic_optimizer`, then pass the returned advantages to
`SILBuffer.update_priorities`. A buffer built with `z_dim` > 0 stores context segments and can return
their embeddings under given encoders instead (`sample(..., encoders)`), each row encoded at most once
until `refresh_contexts`.

Differences from the authors' SIL code (junhyukoh/self-imitation-learning), whose summary is in
docs/algorithms/mcat.md: the critic term is not clipped at R - Q = 1, losses are batch means (not
sums over max(valid samples, 64)), and every finished episode is stored (the authors keep only episodes
with a positive reward; callers that want that filter apply it before `add_episode`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pipeline.agents.td3 import TD3
from pipeline.methods.mcat.context_cache import ContextCache, Encoder
from pipeline.methods.mcat.sil_config import SILConfig
from pipeline.seeding import stream_generator

ADVANTAGE_CLIP = 1.0  # upper clip of R - V (`clip=1` in the authors' code)
PRIORITY_EPS = 1e-6  # keeps zero-advantage transitions sampleable (the authors' floor)


class SILBatch(NamedTuple):
    obs: torch.Tensor  # [K, B, obs_dim]
    action: torch.Tensor  # [K, B, action_dim]
    context: torch.Tensor | None  # [K, B, context_dim] for context-conditioned agents, else None
    returns: torch.Tensor  # [K, B], discounted Monte-Carlo return R of the stored episode
    weights: torch.Tensor  # [K, B], importance weights in (0, 1]
    indices: torch.Tensor  # [K, B] int64 rows, for `update_priorities`


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """R_t = sum_k discount^k r_{t+k} over one finished episode's rewards [T] (float64 [T])."""
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    returns = np.empty_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + discount * running
        returns[t] = running
    return returns


def sil_advantage(returns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The clipped advantage clip(R - V, 0, 1), elementwise."""
    return (returns - values).clamp(0.0, ADVANTAGE_CLIP)


class SILBuffer:
    """K seeds' ring buffers of finished episodes' transitions (obs, action, context, R).

    Seed k samples proportionally to priority^alpha with its own generator (stream "sil" of seed `seed + k`). New
    transitions get the largest priority seen so far (1 at first), so each is likely replayed
    once; `update_priorities` sets (adv + eps)^alpha. Importance weights (N P)^-beta are divided
    by the largest one among seed k's stored transitions (that of its lowest priority), so they
    lie in (0, 1].
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        capacity: int,
        *,
        context_dim: int = 0,
        seed: int = 0,
        n_seeds: int = 1,
        alpha: float = 0.6,
        beta: float = 0.1,
        device: str = "cpu",
        z_dim: int = 0,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
        if alpha <= 0 or beta < 0:
            raise ValueError(f"need alpha > 0 and beta >= 0, got alpha {alpha}, beta {beta}")
        self.capacity, self.n_seeds, self.context_dim = capacity, n_seeds, context_dim
        self.alpha, self.beta = alpha, beta
        self.device = torch.device(device)

        def alloc(*shape: int) -> torch.Tensor:
            return torch.zeros(n_seeds, capacity, *shape, dtype=torch.float32, device=self.device)

        self.obs, self.action = alloc(obs_dim), alloc(action_dim)
        self.context = alloc(context_dim) if context_dim > 0 else None
        self.returns = alloc()
        self.priorities = alloc()  # priority ** alpha
        self.max_priority = [1.0] * n_seeds
        self.sizes = [0] * n_seeds
        self._next = [0] * n_seeds
        self.generators = [stream_generator(seed + k, "sil", self.device) for k in range(n_seeds)]
        self._members = torch.arange(n_seeds, device=self.device).unsqueeze(1)
        self.encoded = ContextCache((n_seeds, capacity), z_dim, self.device) if z_dim > 0 and context_dim > 0 else None

    def _rows(self, values: np.ndarray, length: int, width: int, name: str) -> torch.Tensor:
        array = np.asarray(values, dtype=np.float32)
        if array.shape != (length, width):
            raise ValueError(f"{name} has shape {array.shape}, expected {(length, width)}")
        return torch.from_numpy(array).to(self.device)

    def add_episode(
        self,
        seed_index: int,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        discount: float,
        contexts: np.ndarray | None = None,
    ) -> None:
        """Store one finished episode of seed `seed_index`: obs [T, obs_dim], actions [T, action_dim],
        rewards [T] (and contexts [T, context_dim]); an episode longer than capacity keeps its end."""
        if not 0 <= seed_index < self.n_seeds:
            raise ValueError(f"seed_index {seed_index} outside 0..{self.n_seeds - 1}")
        if (contexts is None) != (self.context is None):
            given = "given" if contexts is not None else "missing"
            raise ValueError(f"contexts {given}, but this buffer's context_dim is {self.context_dim}")
        length = len(rewards)
        rows = {
            "obs": self._rows(obs, length, self.obs.shape[-1], "obs"),
            "action": self._rows(actions, length, self.action.shape[-1], "actions"),
            "returns": torch.from_numpy(discounted_returns(rewards, discount).astype(np.float32)).to(self.device),
        }
        if self.context is not None:
            rows["context"] = self._rows(contexts, length, self.context_dim, "contexts")
        keep = min(length, self.capacity)
        start = self._next[seed_index]
        where = (start + torch.arange(keep, device=self.device)) % self.capacity
        for name, values in rows.items():
            getattr(self, name)[seed_index, where] = values[length - keep :]
        self.priorities[seed_index, where] = self.max_priority[seed_index] ** self.alpha
        if self.encoded is not None:
            self.encoded.invalidate((seed_index, where))
        self._next[seed_index] = (start + keep) % self.capacity
        self.sizes[seed_index] = min(self.sizes[seed_index] + keep, self.capacity)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything the buffer holds (rows, priorities, positions, generators) as numpy arrays."""
        arrays = {name: getattr(self, name).cpu().numpy() for name in ("obs", "action", "returns", "priorities")}
        if self.context is not None:
            arrays["context"] = self.context.cpu().numpy()
        arrays["sizes"], arrays["next"] = np.array(self.sizes), np.array(self._next)
        arrays["max_priority"] = np.array(self.max_priority)
        arrays["generators"] = np.stack([g.get_state().numpy() for g in self.generators])
        if self.encoded is not None:
            arrays |= self.encoded.state_arrays("z")
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays["obs"].shape != tuple(self.obs.shape):
            raise ValueError(f"SIL state has shape {arrays['obs'].shape}, this buffer {tuple(self.obs.shape)}")
        for name in ("obs", "action", "returns", "priorities") + (("context",) if self.context is not None else ()):
            getattr(self, name).copy_(torch.from_numpy(arrays[name]))
        self.sizes, self._next = arrays["sizes"].tolist(), arrays["next"].tolist()
        self.max_priority = arrays["max_priority"].tolist()
        for g, state in zip(self.generators, arrays["generators"], strict=True):
            g.set_state(torch.from_numpy(state.copy()))
        if self.encoded is not None:
            self.encoded.load_state_arrays(arrays, "z")

    def refresh_contexts(self, encoders: list[Encoder]) -> None:
        """Encode every stored context anew: call it after any change of an encoder."""
        if self.encoded is None:
            raise ValueError("this buffer keeps no context cache: construct it with z_dim > 0")
        rows = [torch.arange(size, device=self.device)[:, None] for size in self.sizes]
        self.encoded.refresh(rows, lambda sub: self.context[sub], encoders)

    def sample(self, batch_size: int, encoders: list[Encoder] | None = None) -> SILBatch:
        """`batch_size` transitions per seed, each seed from its own episodes, with replacement; with
        `encoders`, the batch's context is encoders[k](stored context) of seed k (cached per row)."""
        if min(self.sizes) == 0:
            raise ValueError(f"cannot sample: a seed has no stored episode (transitions per seed {self.sizes})")
        indices, weights = [], []
        for k, g in enumerate(self.generators):
            priorities = self.priorities[k, : self.sizes[k]]
            idx = torch.multinomial(priorities, batch_size, replacement=True, generator=g)
            indices.append(idx)
            # (N P_i)^-beta / (N P_min)^-beta = (p_i / p_min)^-beta
            weights.append((priorities[idx] / priorities.min()).pow(-self.beta))
        idx = torch.stack(indices)
        m = self._members
        if encoders is None:
            context = None if self.context is None else self.context[m, idx]
        elif self.encoded is None:
            raise ValueError("encoders given, but this buffer keeps no context cache: construct it with z_dim > 0")
        else:
            context = self.encoded.lookup((m, idx), lambda sub: self.context[sub], encoders)
        return SILBatch(self.obs[m, idx], self.action[m, idx], context, self.returns[m, idx], torch.stack(weights), idx)

    def update_priorities(self, indices: torch.Tensor, advantages: torch.Tensor) -> None:
        """Set the priorities of sampled rows `indices` [K, B] to (advantage + eps)^alpha."""
        if indices.shape != advantages.shape or indices.shape[0] != self.n_seeds:
            raise ValueError(f"indices {tuple(indices.shape)} and advantages {tuple(advantages.shape)} must be [K, B]")
        priority = advantages.detach().to(self.device, torch.float32).clamp_min(0) + PRIORITY_EPS
        self.priorities[self._members, indices.to(self.device)] = priority.pow(self.alpha)
        for k in range(self.n_seeds):
            self.max_priority[k] = max(self.max_priority[k], float(priority[k].max()))


def sil_losses(agent: TD3, batch: SILBatch, config: SILConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SIL's (actor loss, critic loss, advantages [K, B] detached) for one batch.

    Each loss is summed over seeds (and the critic's over the twins) of batch means, as TD3's
    losses are, so each member gets its own gradient. The actor loss reaches only the actor's
    weights and the critic loss only the critics'. Nothing is stepped here: add the losses to
    TD3's or backward them and step `agent.actor_optimizer` / `agent.critic_optimizer`.
    """
    state = agent._input(batch.obs, batch.context)
    with agent._autocast():
        q = agent.critic(torch.cat([state, batch.action], -1)).float()  # [K, 2, B]
        policy_action = agent.actor(state)
    with torch.no_grad(), agent._autocast():
        values = agent.critic(torch.cat([state, policy_action.detach()], -1)).min(1).values.float()  # [K, B]
    advantages = sil_advantage(batch.returns, values)
    policy_action = policy_action.float()
    shortfall = (batch.returns.unsqueeze(1) - q).clamp_min(0)
    critic_loss = config.value_weight * (batch.weights.unsqueeze(1) * shortfall.square() / 2).mean(-1).sum()
    distance = (policy_action - batch.action).square().sum(-1)  # [K, B]
    actor_loss = config.actor_weight * (batch.weights * advantages * distance).mean(-1).sum()
    return actor_loss, critic_loss, advantages.detach()
