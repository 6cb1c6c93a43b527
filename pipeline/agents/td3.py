"""TD3 (Fujimoto et al. 2018) for K independent seeds at once, optionally context-conditioned.

Every tensor has a leading seed dimension K: seed k's actor, critics, optimizer state and
target-noise generator are its own (`n_seeds=1` is plain TD3), and batching K seeds into
one model changes nothing but speed: seed k of a K-seed agent matches a 1-seed agent built
with seed `seed + k` to float tolerance. Its weight initialisation and target noise are two
named streams of `seed + k` (`pipeline.seeding`), unrelated to each other and to other seeds'.
With `context_dim > 0` actor and critics take `concat(obs, context)`; meta-training passes the
context z of each transition. Truncation is not terminal: the buffer's `not_done` is 0 only
for real terminations.

`TD3._update` is sfujim/TD3's update, written with autograd and torch.optim's Adam.
`TD3Config.fast` (params: td3.fast, on by default) swaps in the same update computed faster,
equal to it up to float rounding: backward passes written out, Adam steps without torch.optim's
Python overhead and, with `cuda_graph=True`, CUDA graph replay. That code lives in
`pipeline/agents/fast/`; the one branch into it is in `train` (and `step_optimizers`).
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

from pipeline.agents.fast import FastUpdate, fused_adam_step
from pipeline.agents.nets import EnsembleActor, EnsembleTwinCritic
from pipeline.agents.td3_config import Precision, TD3Config
from pipeline.atomic import write_bytes
from pipeline.data.replay import Batch
from pipeline.hardware import native_bf16
from pipeline.seeding import stream_generator

CHECKPOINT_VERSION = 3  # 3: output layers stored [members, out, in]

Losses = dict[str, torch.Tensor]


class UpdateInputs(NamedTuple):
    """What one update reads (tensors only: torch.compile traces it)."""

    state: torch.Tensor  # [K, B, obs (+ context)]
    action: torch.Tensor
    reward: torch.Tensor  # [K, B]
    next_state: torch.Tensor
    not_done: torch.Tensor
    noise: torch.Tensor  # target-policy smoothing noise, [K, B, action]


class TD3:
    """K seeds of TD3: the networks, `select_action`, `train`, `save` and `load` of sfujim/TD3's TD3.py."""

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
        """`cuda_graph`: replay each update as a CUDA graph (`pipeline.agents.fast.cuda_graphs`); needs a CUDA
        device and `config.fast`."""
        if n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
        self.obs_dim, self.action_dim, self.context_dim, self.n_seeds = obs_dim, action_dim, context_dim, n_seeds
        self.config = config
        self.device = torch.device(device)
        if cuda_graph and not config.fast:
            raise ValueError("cuda_graph=True needs td3.fast: true (torch.optim's step cannot be captured)")
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
        self.last_losses: Losses = {}
        compiled = torch.compile if config.compile else (lambda fn: fn)  # the losses and their backward
        self._critic_loss_fn, self._actor_loss_fn = compiled(self.critic_loss), compiled(self.actor_loss)
        self._fast = FastUpdate(self, cuda_graph) if config.fast else None  # pipeline/agents/fast

    @property
    def cuda_graph(self) -> bool:
        """Whether updates replay as CUDA graphs."""
        return self._fast is not None and self._fast.cuda_graph

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

    def train(self, batch: Batch) -> None:
        """One TD3 update of every seed: critics every call, actors and targets every `policy_freq` calls."""
        self.total_it += 1
        state = self._input(batch.obs, batch.context)
        next_state = self._input(batch.next_obs, batch.next_context)
        noise = self._target_noise(batch.action.shape)  # drawn outside the compiled or captured update
        inputs = UpdateInputs(state, batch.action, batch.reward, next_state, batch.not_done, noise)
        actor_step = self.total_it % self.config.policy_freq == 0
        if self._fast is not None:  # td3.fast: the update below to float rounding, faster (pipeline/agents/fast)
            self.last_losses.update(self._fast.update(inputs, actor_step))
        else:
            self.last_losses.update(self._update(inputs, actor_step))

    def _update(self, inputs: UpdateInputs, actor_step: bool) -> Losses:
        """The update with autograd and torch.optim (compiled losses if `compile`); returns its losses."""
        critic_loss = self._critic_loss_fn(inputs)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        losses = {"critic": critic_loss.detach()}
        if actor_step:  # delayed policy updates
            actor_loss = self._actor_loss_fn(inputs.state)
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            losses["actor"] = actor_loss.detach()
            self.update_targets()
        return losses

    def target_q(self, inputs: UpdateInputs) -> torch.Tensor:
        """TD3's target: reward + discount x the smaller target critic at the smoothed target action, [K, B]."""
        with torch.no_grad(), self._autocast():
            low = self.actor.action_bias - self.actor.action_scale
            high = self.actor.action_bias + self.actor.action_scale
            next_action = torch.max(torch.min(self.actor_target(inputs.next_state) + inputs.noise, high), low)
            target_q = self.critic_target(torch.cat([inputs.next_state, next_action], -1)).min(1).values.float()
            return inputs.reward + inputs.not_done * self.config.discount * target_q

    def critic_loss(self, inputs: UpdateInputs) -> torch.Tensor:
        """Sum over seeds and twins of each critic's batch-mean TD error²: per-member gradients."""
        target_q = self.target_q(inputs)
        with self._autocast():
            current_q = self.critic(torch.cat([inputs.state, inputs.action], -1)).float()  # [K, 2, B]
        return (current_q - target_q.unsqueeze(1)).square().mean(-1).sum()

    def actor_loss(self, state: torch.Tensor) -> torch.Tensor:
        """Sum over seeds of -mean Q1(s, actor(s))."""
        with self._autocast():
            q1 = self.critic.q1(torch.cat([state, self.actor(state)], -1)).float()
        return -q1.mean(-1).sum()

    @torch.no_grad()
    def update_targets(self) -> None:
        """Polyak averaging, target <- tau x net + (1 - tau) x target, as one lerp per net."""
        for net, target in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
            torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), self.config.tau)

    def step_optimizers(self) -> None:
        """Adam steps of critics, then actors, on the gradients already set (e.g. by a self-imitation loss)."""
        for optimizer in (self.critic_optimizer, self.actor_optimizer):
            if self._fast is None:
                optimizer.step()
            else:  # td3.fast: torch's fused step, bitwise, without torch.optim's Python overhead
                fused_adam_step(optimizer)

    def _target_noise(self, shape: torch.Size) -> torch.Tensor:
        """Target-policy smoothing noise, clipped, from each seed's generator: [K, B, action]."""
        noise = torch.stack([torch.randn(shape[1:], generator=g, device=self.device) for g in self.generators])
        cfg = self.config
        return (noise * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip) * self.max_action

    def _autocast(self) -> torch.autocast:
        """bf16 autocast when configured. Its weight-cast cache is off: no region casts a weight twice, and
        CUDA graph capture needs it off."""
        bf16 = self.config.precision is Precision.bf16
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False)

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
        if self._fast is not None:
            self._fast.reset()  # the optimizers' state tensors are new

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
