"""TD3 (Fujimoto et al. 2018) for K independent seeds at once, optionally context-conditioned.

Every tensor has a leading seed dimension K: seed k's actor, critics, optimizer state and
target-noise generator are its own (`n_seeds=1` is plain TD3), and batching K seeds into
one model changes nothing but speed: seed k of a K-seed agent matches a 1-seed agent built
with seed `seed + k` to float tolerance. Its weight initialisation and target noise are two
named streams of `seed + k` (`pipeline.seeding`), unrelated to each other and to other seeds'.
With `context_dim > 0` actor and critics take `concat(obs, context)`; meta-training passes the
context z of each transition. Truncation is not terminal: the buffer's `not_done` is 0 only
for real terminations.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from pipeline.agents.cuda_graphs import Losses, UpdateGraphs
from pipeline.agents.fused_adam import fused_adam_step
from pipeline.agents.nets import Q1_MEMBERS, EnsembleActor, EnsembleTwinCritic, MLPGradients
from pipeline.agents.td3_config import Precision, TD3Config
from pipeline.atomic import write_bytes
from pipeline.data.replay import Batch
from pipeline.hardware import native_bf16
from pipeline.seeding import stream_generator

CHECKPOINT_VERSION = 3  # 3: output layers stored [members, out, in]


class UpdateInputs(NamedTuple):
    """What one update reads (tensors only: torch.compile traces it)."""

    state: torch.Tensor  # [K, B, obs (+ context)]
    action: torch.Tensor
    reward: torch.Tensor  # [K, B]
    next_state: torch.Tensor
    not_done: torch.Tensor
    noise: torch.Tensor  # target-policy smoothing noise, [K, B, action]


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
        n_seeds: int = 1,
        device: str = "cpu",
        cuda_graph: bool = False,
    ):
        """`cuda_graph`: replay each update as a CUDA graph (`pipeline.agents.cuda_graphs`); needs a CUDA device."""
        if n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
        self.obs_dim, self.action_dim, self.context_dim, self.n_seeds = obs_dim, action_dim, context_dim, n_seeds
        self.config = config
        self.device = torch.device(device)
        if cuda_graph and self.device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs a CUDA device; this agent is on {self.device}")
        if config.precision is Precision.bf16 and not native_bf16(self.device):
            warnings.warn(
                f"precision bf16 (params: td3.precision) on {self.device}, which has no native bf16 matmuls "
                "(an x86 CPU needs AVX-512 BF16 or AMX): torch emulates them, and the update runs slower than fp32 "
                "(30-40x slower on an AVX2-only CPU in make bench); fp32 is the fast choice here",
                RuntimeWarning,
                stacklevel=2,
            )
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32), device=self.device)
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32), device=self.device)
        self.max_action = (high - low) / 2
        in_dim = obs_dim + context_dim
        self.actor = EnsembleActor(n_seeds, in_dim, action_dim, config.hidden, low, high).to(self.device)
        self.critic = EnsembleTwinCritic(n_seeds, in_dim + action_dim, config.hidden).to(self.device)
        for k in range(n_seeds):  # seed k's weights come from seed k's generator alone
            init = stream_generator(seed + k, "td3.init", self.device)
            self.actor.mlp.init_member(k, init)
            self.critic.mlp.init_member(2 * k, init)
            self.critic.mlp.init_member(2 * k + 1, init)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.lr, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.lr, fused=True)
        # target-policy smoothing noise, one generator per seed
        self.generators = [stream_generator(seed + k, "td3.target_noise", self.device) for k in range(n_seeds)]
        self.total_it = 0
        self.last_losses: dict[str, torch.Tensor] = {}
        compiled = torch.compile if config.compile else (lambda fn: fn)
        self._critic_loss_fn = compiled(self._critic_loss)
        self._actor_loss_fn = compiled(self._actor_loss)
        self._critic_gradients_fn = compiled(self._critic_gradients)
        self._actor_gradients_fn = compiled(self._actor_gradients)
        self._graphs = UpdateGraphs(self._update, self.device) if cuda_graph else None

    @property
    def cuda_graph(self) -> bool:
        """Whether updates replay as CUDA graphs."""
        return self._graphs is not None

    def _input(self, obs: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if self.context_dim == 0:
            return obs
        if context is None:
            raise ValueError(f"this agent is conditioned on a {self.context_dim}-dim context; pass one")
        return torch.cat([obs, context], dim=-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic actions: obs [K, B, obs_dim] (and context [K, B, context_dim]) -> [K, B, action_dim]."""
        return self.actor(self._input(obs, context))

    def select_action(self, obs: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """One deterministic action per seed: obs [K, obs_dim] -> [K, action_dim] ([obs_dim] when K = 1)."""
        single = np.ndim(obs) == 1

        def batch(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device).reshape(self.n_seeds, 1, -1)

        action = self.act(batch(obs), None if context is None else batch(context)).cpu().numpy()
        return action.reshape(self.action_dim) if single else action.reshape(self.n_seeds, self.action_dim)

    def _target_noise(self, shape: torch.Size) -> torch.Tensor:
        noise = torch.stack([torch.randn(shape[1:], generator=g, device=self.device) for g in self.generators])
        cfg = self.config
        return (noise * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip) * self.max_action

    def _autocast(self) -> torch.autocast:
        """bf16 autocast when configured. Its weight-cast cache is off: no region casts a weight twice, and
        CUDA graph capture needs it off."""
        bf16 = self.config.precision is Precision.bf16
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False)

    def _target_q(self, update: UpdateInputs) -> torch.Tensor:
        """TD3's target: reward + discount x the smaller target critic at the smoothed target action, [K, B]."""
        with torch.no_grad(), self._autocast():
            low = self.actor.action_bias - self.actor.action_scale
            high = self.actor.action_bias + self.actor.action_scale
            next_action = torch.max(torch.min(self.actor_target(update.next_state) + update.noise, high), low)
            target_q = self.critic_target(torch.cat([update.next_state, next_action], -1)).min(1).values.float()
            return update.reward + update.not_done * self.config.discount * target_q

    def _critic_loss(self, update: UpdateInputs) -> torch.Tensor:
        """Sum over seeds and twins of each critic's batch-mean TD error²: per-member gradients."""
        target_q = self._target_q(update)
        with self._autocast():
            current_q = self.critic(torch.cat([update.state, update.action], -1)).float()  # [K, 2, B]
        return (current_q - target_q.unsqueeze(1)).square().mean(-1).sum()

    def _actor_loss(self, state: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            q1 = self.critic.q1(torch.cat([state, self.actor(state)], -1)).float()
        return -q1.mean(-1).sum()

    def train(self, batch: Batch) -> None:
        """One TD3 update of every seed: critics every call, actors and targets every `policy_freq` calls."""
        self.total_it += 1
        state = self._input(batch.obs, batch.context)
        next_state = self._input(batch.next_obs, batch.next_context)
        noise = self._target_noise(batch.action.shape)  # drawn outside the compiled or captured update
        update = UpdateInputs(state, batch.action, batch.reward, next_state, batch.not_done, noise)
        actor_step = self.total_it % self.config.policy_freq == 0
        run = self._update if self._graphs is None else self._graphs.run
        self.last_losses.update(run(update, actor_step))

    def _update(self, update: UpdateInputs, actor_step: bool) -> Losses:
        """The update proper (what a CUDA graph captures); returns its losses."""
        if self.config.precision is Precision.fp32:
            losses = self._train_by_hand(update, actor_step)
        else:
            losses = self._train_autograd(update, actor_step)
        if actor_step:
            with torch.no_grad():
                for net, target in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                    torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), self.config.tau)
        return losses

    def _train_autograd(self, update: UpdateInputs, actor_step: bool) -> Losses:
        """The update through autograd, which bf16 autocast needs (compiled if `compile`)."""
        critic_loss = self._critic_loss_fn(update)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        fused_adam_step(self.critic_optimizer)
        losses = {"critic": critic_loss.detach()}
        if actor_step:
            self.critic.requires_grad_(False)  # the actor loss needs no critic weight gradients
            actor_loss = self._actor_loss_fn(update.state)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.critic.requires_grad_(True)
            fused_adam_step(self.actor_optimizer)
            losses["actor"] = actor_loss.detach()
        return losses

    def _train_by_hand(self, update: UpdateInputs, actor_step: bool) -> Losses:
        """The fp32 update with its backward passes written out (`EnsembleMLP.gradients`; compiled if `compile`):
        the update `_train_autograd` makes, up to float rounding, without autograd's graph."""
        gradients, critic_loss = self._critic_gradients_fn(update)
        self.critic.mlp.set_gradients(gradients)
        fused_adam_step(self.critic_optimizer)
        losses = {"critic": critic_loss}
        if actor_step:
            gradients, losses["actor"] = self._actor_gradients_fn(update.state)
            self.actor.mlp.set_gradients(gradients)
            fused_adam_step(self.actor_optimizer)
        return losses

    @torch.no_grad()
    def _critic_gradients(self, update: UpdateInputs) -> tuple[MLPGradients, torch.Tensor]:
        """`_critic_loss` and its gradients by hand: for a batch of B, d/dq of mean((q - y)²) is (q - y) x 2/B."""
        target_q = self._target_q(update)
        k, b = target_q.shape
        q, inputs = self.critic.mlp.forward_saving(self.critic.pairs(torch.cat([update.state, update.action], -1)))
        error = q.view(k, 2, b) - target_q.unsqueeze(1)
        gradients = self.critic.mlp.gradients(inputs, (error * 2 * (1 / b)).view(2 * k, b, 1))
        return gradients, error.square().mean(-1).sum()

    @torch.no_grad()
    def _actor_gradients(self, state: torch.Tensor) -> tuple[MLPGradients, torch.Tensor]:
        """`_actor_loss` and the actor's gradients by hand: d/dq1 of -mean(q1) is -1/B, through critic 1 alone."""
        action, saved = self.actor.forward_saving(state)
        q1, inputs = self.critic.mlp.forward_saving(torch.cat([state, action], -1), Q1_MEMBERS)
        grad_q1 = torch.full_like(q1, -1 / q1.shape[1])
        grad_input = self.critic.mlp.gradients(inputs, grad_q1, members=Q1_MEMBERS, weight_grads=False, input_grad=True)
        gradients = self.actor.gradients(saved, grad_input.input[..., state.shape[-1] :])
        return gradients, -q1.squeeze(-1).mean(-1).sum()

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Weights of actor, critics and their targets, named like 'critic_target.mlp.weight'."""
        for net in ("actor", "critic", "actor_target", "critic_target"):
            for name, param in getattr(self, net).named_parameters():
                yield f"{net}.{name}", param

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "dims": torch.tensor([self.obs_dim, self.action_dim, self.context_dim, self.n_seeds]),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "total_it": self.total_it,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"TD3 checkpoint version {state.get('version')!r}, expected {CHECKPOINT_VERSION}")
        dims = [int(d) for d in state["dims"]]
        ours = [self.obs_dim, self.action_dim, self.context_dim, self.n_seeds]
        if dims != ours:
            raise ValueError(f"TD3 checkpoint has (obs, action, context, seeds) dims {dims}, this agent {ours}")
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        for name in ("actor_optimizer", "critic_optimizer"):  # copied: torch's would keep (and step) the given tensors
            getattr(self, name).load_state_dict(copy.deepcopy(state[name]))
        for g, s in zip(self.generators, state["generators"], strict=True):
            g.set_state(s.cpu())  # a CUDA generator too takes its state as a CPU tensor; load's map_location moved it
        self.total_it = int(state["total_it"])
        if self._graphs is not None:
            self._graphs.reset()  # the optimizers' state tensors are new

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """Write a checkpoint; `meta` (plain values: the setting, the tasks) travels with it."""
        buffer = io.BytesIO()  # torch names the archive after the file: a temp name would change the bytes
        torch.save({**self.state_dict(), "meta": meta or {}}, buffer)
        write_bytes(path, buffer.getvalue())

    def load(self, path: str | Path, expected_meta: dict[str, Any] | None = None) -> None:
        """Load a checkpoint written by `save`; executes no code (weights_only). Each key of
        `expected_meta` must equal the checkpoint's, else ValueError names the file and the field."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        for key, expected in (expected_meta or {}).items():
            found = state.get("meta", {}).get(key)
            if found != expected:
                raise ValueError(f"{path}: field 'meta.{key}': expected {expected!r}, found {found!r}")
        try:
            self.load_state_dict(state)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def stack_seeds(agents: Sequence[TD3]) -> TD3:
    """One agent holding the seeds of `agents` in order (e.g. seeds trained one at a time), optimizer
    state and generators included; all must share dims, config, device and update count."""
    first = agents[0]

    def identity(a: TD3) -> tuple:
        return a.obs_dim, a.action_dim, a.context_dim, a.device, a.config, a.total_it

    if any(identity(a) != identity(first) for a in agents):
        raise ValueError("stack_seeds: the agents differ in dims, device, config or update count")
    bias, scale = first.actor.action_bias, first.actor.action_scale
    low, high = (bias - scale).cpu().numpy(), (bias + scale).cpu().numpy()
    n_seeds = sum(a.n_seeds for a in agents)
    stacked = TD3(first.obs_dim, first.action_dim, low, high, first.config, context_dim=first.context_dim,
                  n_seeds=n_seeds, device=str(first.device), cuda_graph=first.cuda_graph)  # fmt: skip
    states = [a.state_dict() for a in agents]
    state = stacked.state_dict()
    for net in ("actor", "critic", "actor_target", "critic_target"):
        weights = dict(getattr(stacked, net).named_parameters())  # [members, ...]; buffers (bounds) are shared
        state[net] = {
            name: torch.cat([s[net][name] for s in states]) if name in weights else value
            for name, value in state[net].items()
        }
    for opt in ("actor_optimizer", "critic_optimizer"):
        per_agent = [s[opt]["state"] for s in states]  # parameter index -> step, exp_avg, exp_avg_sq

        def stacked_moments(index: int, per_agent: list = per_agent, opt: str = opt) -> dict[str, torch.Tensor]:
            keys = per_agent[0][index]
            if any(not torch.equal(p[index]["step"], keys["step"]) for p in per_agent):  # Adam's bias correction
                raise ValueError(f"stack_seeds: the agents' {opt} took different numbers of steps")
            return {k: keys[k] if k == "step" else torch.cat([p[index][k] for p in per_agent]) for k in keys}

        state[opt]["state"] = {index: stacked_moments(index) for index in per_agent[0]}
    state["generators"] = [g for s in states for g in s["generators"]]
    state["total_it"] = first.total_it
    stacked.load_state_dict(state)
    return stacked
