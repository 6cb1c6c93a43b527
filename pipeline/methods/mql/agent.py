"""MQL's TD3 for one seed (the reference's `MQL.train_TD3` and `do_training`): context actor and twin critics,
optionally with per-transition weights (propensity) and a proximal term towards anchor weights (adaptation)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from pipeline.methods.mql.config import MQLConfig
from pipeline.methods.mql.nets import ContextActor, ContextTwinCritic
from pipeline.methods.mql.replay import HistoryBatch
from pipeline.seeding import stream_generator, stream_seed


def proximal(net: torch.nn.Module, anchor: torch.nn.Module) -> torch.Tensor:
    """sum over weights of ||theta - theta_anchor||^2 (the reference's `get_prox_penalty`)."""
    return sum((p - q.detach()).square().sum() for p, q in zip(net.parameters(), anchor.parameters(), strict=True))


class MQLAgent:
    def __init__(self, obs_dim: int, action_dim: int, low: np.ndarray, high: np.ndarray, config: MQLConfig, seed: int):
        """Weights from stream "mql.init" of `seed` (torch's global generator is left as it was)."""
        self.config = config
        step_dim = action_dim + 1 + obs_dim
        low_t, high_t = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(seed, "mql.init"))
            self.actor = ContextActor(
                obs_dim, action_dim, step_dim, config.context_hidden, config.hidden, low_t, high_t
            )
            self.critic = ContextTwinCritic(obs_dim, action_dim, step_dim, config.context_hidden, config.hidden)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.reset_optimizers()
        self.max_action = (high_t - low_t) / 2
        self.generator = stream_generator(seed, "mql.target_noise")
        self.total_it = 0

    def reset_optimizers(self) -> None:
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=self.config.lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=self.config.lr)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        return self.actor(obs, history)

    def update(self, batch: HistoryBatch, *, weights: torch.Tensor | None = None,
               anchor: MQLAgent | None = None) -> dict[str, float]:  # fmt: skip
        """One TD3 update; `weights` [B] scale each transition's losses; `anchor` adds the proximal term
        `proximal_weight` x ||theta - theta_anchor||^2 to both losses."""
        config = self.config
        self.total_it += 1
        w = torch.ones_like(batch.reward) if weights is None else weights
        with torch.no_grad():
            noise = torch.randn(batch.action.shape, generator=self.generator) * config.policy_noise
            noise = noise.clamp(-config.noise_clip, config.noise_clip) * self.max_action
            low = self.actor.action_bias - self.actor.action_scale
            high = self.actor.action_bias + self.actor.action_scale
            next_action = torch.max(torch.min(self.actor_target(batch.next_obs, batch.next_history) + noise, high), low)
            target = torch.min(*self.critic_target(batch.next_obs, next_action, batch.next_history))
            target = batch.reward + batch.not_done * config.discount * target
        q1, q2 = self.critic(batch.obs, batch.action, batch.history)
        critic_loss = (((q1 - target).square() + (q2 - target).square()) * w).mean()
        if anchor is not None:
            critic_loss = critic_loss + config.proximal_weight * proximal(self.critic, anchor.critic)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        losses = {"critic": float(critic_loss.detach())}
        if self.total_it % config.policy_freq == 0:
            q = self.critic.first(batch.obs, self.actor(batch.obs, batch.history), batch.history)
            actor_loss = -(q * w).mean()
            if anchor is not None:
                actor_loss = actor_loss + config.proximal_weight * proximal(self.actor, anchor.actor)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            losses["actor"] = float(actor_loss.detach())
            with torch.no_grad():
                for net, target_net in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                    torch._foreach_lerp_(list(target_net.parameters()), list(net.parameters()), config.tau)
        return losses

    def clone(self, generator: torch.Generator) -> MQLAgent:
        """An independent copy (networks, targets, update count) with fresh optimizers and target noise from
        `generator`: adapted at test time and discarded, leaving this agent and its streams untouched."""
        twin = copy.copy(self)
        for name in ("actor", "critic", "actor_target", "critic_target"):
            setattr(twin, name, copy.deepcopy(getattr(self, name)))
        twin.reset_optimizers()
        twin.generator = generator
        return twin

    def state_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name).state_dict() for name in ("actor", "critic", "actor_target", "critic_target")},
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "total_it": self.total_it,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_optimizer.load_state_dict(copy.deepcopy(state["actor_optimizer"]))
        self.critic_optimizer.load_state_dict(copy.deepcopy(state["critic_optimizer"]))
        self.generator.set_state(state["generator"])
        self.total_it = int(state["total_it"])
