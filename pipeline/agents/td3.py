"""TD3 (Fujimoto et al. 2018), optionally conditioned on a task-context vector.

With `context_dim > 0` actor and critics take `concat(obs, context)`; meta-training passes
the context z of each transition in the batch. Truncation is not terminal: the buffer's
`not_done` is 0 only for real terminations.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.agents.nets import Actor, TwinCritic
from pipeline.agents.td3_config import TD3Config
from pipeline.atomic import atomic_path
from pipeline.data.replay import Batch

CHECKPOINT_VERSION = 1


def _adam(params: Any, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, fused=True)


class TD3:
    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        config: TD3Config,
        *,
        context_dim: int = 0,
        seed: int = 0,
        device: str = "cpu",
    ):
        self.obs_dim, self.action_dim, self.context_dim = obs_dim, action_dim, context_dim
        self.config = config
        self.device = torch.device(device)
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32), device=self.device)
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32), device=self.device)
        self.max_action = (high - low) / 2
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(seed)
            self.actor = Actor(obs_dim + context_dim, action_dim, config.hidden, low, high).to(self.device)
            self.critic = TwinCritic(obs_dim + context_dim + action_dim, config.hidden).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = _adam(self.actor.parameters(), config.lr)
        self.critic_optimizer = _adam(self.critic.parameters(), config.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(seed + 1)  # target-policy noise
        self.total_it = 0
        self.last_losses: dict[str, torch.Tensor] = {}

    def _input(self, obs: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if self.context_dim == 0:
            return obs
        if context is None:
            raise ValueError(f"this agent is conditioned on a {self.context_dim}-dim context; pass one")
        return torch.cat([obs, context], dim=-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic action for a batch of observations (tensors in, tensor out)."""
        return self.actor(self._input(obs, context))

    def select_action(self, obs: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Deterministic action for one observation (numpy in, numpy out)."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        ctx_t = None if context is None else torch.as_tensor(np.asarray(context, dtype=np.float32), device=self.device)
        return self.act(obs_t, ctx_t).cpu().numpy()

    def train(self, batch: Batch) -> None:
        """One TD3 update: critics every call, actor and targets every `policy_freq` calls."""
        cfg = self.config
        self.total_it += 1
        state = self._input(batch.obs, batch.context)
        next_state = self._input(batch.next_obs, batch.next_context)

        with torch.no_grad():
            noise = torch.randn(batch.action.shape, generator=self.generator, device=self.device)
            noise = (noise * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip) * self.max_action
            low = self.actor.action_bias - self.actor.action_scale
            high = self.actor.action_bias + self.actor.action_scale
            next_action = torch.max(torch.min(self.actor_target(next_state) + noise, high), low)
            target_q = self.critic_target(torch.cat([next_state, next_action], -1)).min(0).values
            target_q = batch.reward + batch.not_done * cfg.discount * target_q

        current_q = self.critic(torch.cat([state, batch.action], -1))
        critic_loss = F.mse_loss(current_q, target_q.expand_as(current_q), reduction="none").mean(1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.last_losses["critic"] = critic_loss.detach()

        if self.total_it % cfg.policy_freq == 0:
            self.critic.requires_grad_(False)  # the actor loss needs no critic weight gradients
            actor_loss = -self.critic.q1(torch.cat([state, self.actor(state)], -1)).mean()
            self.critic.requires_grad_(True)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            self.last_losses["actor"] = actor_loss.detach()
            with torch.no_grad():
                for net, target in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                    torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), cfg.tau)

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "dims": torch.tensor([self.obs_dim, self.action_dim, self.context_dim]),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "total_it": self.total_it,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"TD3 checkpoint version {state.get('version')!r}, expected {CHECKPOINT_VERSION}")
        dims = [int(d) for d in state["dims"]]
        if dims != [self.obs_dim, self.action_dim, self.context_dim]:
            raise ValueError(
                f"TD3 checkpoint has (obs, action, context) dims {dims}, "
                f"this agent {[self.obs_dim, self.action_dim, self.context_dim]}"
            )
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.total_it = int(state["total_it"])

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)

    def load(self, path: str | Path) -> None:
        """Load a checkpoint written by `save`; executes no code (weights_only)."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
