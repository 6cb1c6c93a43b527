"""SAC (Haarnoja et al. 2018, with a learned temperature) for K independent seeds at once, optionally
context-conditioned: the base of the project's PEARL (pipeline/methods/pearl).

As `pipeline.agents.td3.TD3`, every tensor has a leading seed dimension K (`EnsembleMLP`): seed k's
actor, twin critics, temperature, optimizer state and sampling noise are its own, so seed k of a
K-seed agent matches a 1-seed agent built with seed `seed + k` to float tolerance. Weights and the
policy's reparameterisation noise are two named streams of `seed + k` (`pipeline.seeding`).

One update (`train`), in the order of CleanRL's sac_continuous_action.py: the critics towards
r + gamma (min target Q(s', a') - alpha log pi(a'|s')), a' ~ pi(s'); the actor on
alpha log pi(a|s) - min Q(s, a), a ~ pi(s) reparameterised; the temperature on
-log alpha (log pi(a|s) + target entropy); Polyak averaging of the target critics. Losses sum the
seeds' batch means, so each member gets exactly its own gradient. The pieces (`critic_loss`,
`policy_losses`, `step_policy`) are public for methods that train an encoder through the critic
(PEARL). The policy is a tanh-squashed Gaussian mapped onto the action bounds; its log-probability
is that of the squashed sample in [-1, 1]^A (SB3's convention: the bounds' scale is a constant).
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.agents.fast import fused_adam_step
from pipeline.agents.nets import EnsembleMLP, EnsembleTwinCritic
from pipeline.agents.sac_config import SACConfig
from pipeline.atomic import write_bytes
from pipeline.data.replay import Batch
from pipeline.seeding import stream_generator

CHECKPOINT_VERSION = 1
LOG_2 = math.log(2.0)


class EnsembleGaussianActor(nn.Module):
    """K tanh-Gaussian policies: x [K, B, in] -> mean and log std of the pre-tanh Gaussian, [K, B, action]."""

    def __init__(self, seeds: int, in_dim: int, action_dim: int, sizes: Sequence[int], low: torch.Tensor,
                 high: torch.Tensor, log_std_bounds: tuple[float, float]):  # fmt: skip
        super().__init__()
        self.mlp = EnsembleMLP(seeds, [in_dim, *sizes, 2 * action_dim])
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)
        self.log_std_bounds = log_std_bounds

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.mlp(x).chunk(2, dim=-1)
        return mean, log_std.clamp(*self.log_std_bounds)

    def sample(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised actions (on the bounds) and their log-probabilities [K, B] for standard normal `noise`."""
        mean, log_std = self(x)
        u = mean + log_std.exp() * noise
        # log N(u; mean, std) - log(1 - tanh(u)^2), the latter written stably as 2 (log 2 - u - softplus(-2u))
        log_prob = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (LOG_2 - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u) * self.action_scale + self.action_bias, log_prob

    def deterministic(self, x: torch.Tensor) -> torch.Tensor:
        """The mean action, squashed onto the bounds (evaluation)."""
        return torch.tanh(self(x)[0]) * self.action_scale + self.action_bias


class SAC:
    """K seeds of SAC: networks, `select_action`, `train`, `save` and `load`."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        config: SACConfig,
        *,
        context_dim: int = 0,
        seed: int = 0,
        n_seeds: int = 1,
        device: str = "cpu",
    ):
        if n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
        if config.log_std_min >= config.log_std_max:
            raise ValueError(f"sac.log_std_min ({config.log_std_min}) must be below sac.log_std_max")
        self.obs_dim, self.action_dim, self.context_dim, self.n_seeds = obs_dim, action_dim, context_dim, n_seeds
        self.config, self.device = config, torch.device(device)
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32), device=self.device)
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32), device=self.device)
        in_dim, sizes = obs_dim + context_dim, [config.hidden] * config.layers
        bounds = (config.log_std_min, config.log_std_max)
        self.actor = EnsembleGaussianActor(n_seeds, in_dim, action_dim, sizes, low, high, bounds).to(self.device)
        self.critic = EnsembleTwinCritic(n_seeds, in_dim + action_dim, config.hidden).to(self.device)
        if config.layers != 2:  # EnsembleTwinCritic has two hidden layers; other depths get their own MLP
            self.critic.mlp = EnsembleMLP(2 * n_seeds, [in_dim + action_dim, *sizes, 1]).to(self.device)
        for k in range(n_seeds):  # seed k's weights come from seed k's generator alone
            init = stream_generator(seed + k, "sac.init", self.device)
            self.actor.mlp.init_member(k, init)
            self.critic.mlp.init_member(2 * k, init)
            self.critic.mlp.init_member(2 * k + 1, init)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((n_seeds,), math.log(config.init_alpha), device=self.device))
        self.target_entropy = -config.target_entropy_scale * action_dim
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.lr, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.lr, fused=True)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.lr, fused=True)
        self.generators = [stream_generator(seed + k, "sac.noise", self.device) for k in range(n_seeds)]
        self.total_it = 0
        self.last_losses: dict[str, torch.Tensor] = {}

    @property
    def alpha(self) -> torch.Tensor:
        """Each seed's temperature [K] (no gradient)."""
        return self.log_alpha.detach().exp()

    def noise(self, batch: int) -> torch.Tensor:
        """Standard normal noise [K, batch, action], seed k's from its own generator."""
        return torch.stack(
            [torch.randn(batch, self.action_dim, generator=g, device=self.device) for g in self.generators]
        )

    def _input(self, obs: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if self.context_dim == 0:
            return obs
        if context is None:
            raise ValueError(f"this agent is conditioned on a {self.context_dim}-dim context; pass one")
        return torch.cat([obs, context], dim=-1)

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, context: torch.Tensor | None = None, *, deterministic: bool = True
    ) -> torch.Tensor:
        """Actions [K, B, action] for obs [K, B, obs] (and context): the mean, or a sample of the policy."""
        x = self._input(obs, context)
        if deterministic:
            return self.actor.deterministic(x)
        return self.actor.sample(x, self.noise(x.shape[1]))[0]

    def select_action(
        self, obs: np.ndarray, context: np.ndarray | None = None, *, deterministic: bool = True
    ) -> np.ndarray:
        """One action per seed: obs [K, obs_dim] -> [K, action_dim] ([obs_dim] -> [action_dim] when K = 1)."""
        single = np.ndim(obs) == 1

        def batch(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device).reshape(self.n_seeds, 1, -1)

        ctx = None if context is None else batch(context)
        action = self.act(batch(obs), ctx, deterministic=deterministic).cpu().numpy()
        return action.reshape(self.action_dim) if single else action.reshape(self.n_seeds, self.action_dim)

    def critic_loss(
        self, state: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_state: torch.Tensor,
        not_done: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Sum over seeds of half the twins' summed batch-mean TD error² (SB3's scale). `state` may carry a
        gradient to an encoder (PEARL); the target is computed without one."""
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(next_state, self.noise(next_state.shape[1]))
            next_q = self.critic_target(torch.cat([next_state, next_action], -1)).min(1).values
            soft = next_q - self.alpha[:, None] * next_log_prob
            target = reward + not_done * self.config.discount * soft
        current = self.critic(torch.cat([state, action], -1))  # [K, 2, B]
        return 0.5 * (current - target.unsqueeze(1)).square().mean(-1).sum()

    def policy_losses(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's loss (sum over seeds of mean alpha log pi - min Q) and the temperature's, on `state`
        (no gradient to whatever produced it)."""
        state = state.detach()
        action, log_prob = self.actor.sample(state, self.noise(state.shape[1]))
        q = self.critic(torch.cat([state, action], -1)).min(1).values  # [K, B]
        actor_loss = (self.alpha[:, None] * log_prob - q).mean(-1).sum()
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy).mean(-1)).sum()
        return actor_loss, alpha_loss

    def step_policy(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """The actor's and the temperature's step on `state`, then the target critics' Polyak step."""
        actor_loss, alpha_loss = self.policy_losses(state)
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()  # the critics' gradients this leaves are cleared before their next step
        fused_adam_step(self.actor_optimizer)
        losses = {"actor": actor_loss.detach(), "alpha": self.alpha.mean()}
        if self.config.learn_alpha:
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            fused_adam_step(self.alpha_optimizer)
            losses["alpha_loss"] = alpha_loss.detach()
        self.update_targets()
        return losses

    def train(self, batch: Batch) -> None:
        """One SAC update of every seed on `batch` [K, B, ...]."""
        self.total_it += 1
        state = self._input(batch.obs, batch.context)
        next_state = self._input(batch.next_obs, batch.next_context)
        critic_loss = self.critic_loss(state, batch.action, batch.reward, next_state, batch.not_done)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        fused_adam_step(self.critic_optimizer)
        self.last_losses = {"critic": critic_loss.detach(), **self.step_policy(state)}

    @torch.no_grad()
    def update_targets(self) -> None:
        """target <- tau x critic + (1 - tau) x target, one lerp for all weights."""
        torch._foreach_lerp_(list(self.critic_target.parameters()), list(self.critic.parameters()), self.config.tau)

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "dims": torch.tensor([self.obs_dim, self.action_dim, self.context_dim, self.n_seeds]),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "total_it": self.total_it,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"SAC checkpoint version {state.get('version')!r}, expected {CHECKPOINT_VERSION}")
        dims = [int(d) for d in state["dims"]]
        ours = [self.obs_dim, self.action_dim, self.context_dim, self.n_seeds]
        if dims != ours:
            raise ValueError(f"SAC checkpoint has (obs, action, context, seeds) dims {dims}, this agent {ours}")
        for name in ("actor", "critic", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for name in ("actor_optimizer", "critic_optimizer", "alpha_optimizer"):  # copied: torch keeps given tensors
            getattr(self, name).load_state_dict(copy.deepcopy(state[name]))
        for g, s in zip(self.generators, state["generators"], strict=True):
            g.set_state(s.cpu())
        self.total_it = int(state["total_it"])

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """Write a checkpoint; `meta` (plain values: the setting, the tasks) travels with it."""
        buffer = io.BytesIO()
        torch.save({**self.state_dict(), "meta": meta or {}}, buffer)
        write_bytes(path, buffer.getvalue())

    def load(self, path: str | Path, expected_meta: dict[str, Any] | None = None) -> None:
        """Load a checkpoint written by `save` (weights_only); each key of `expected_meta` must match."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        for key, expected in (expected_meta or {}).items():
            found = state.get("meta", {}).get(key)
            if found != expected:
                raise ValueError(f"{path}: field 'meta.{key}': expected {expected!r}, found {found!r}")
        try:
            self.load_state_dict(state)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
