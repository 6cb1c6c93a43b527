"""TD3's update computed faster: the update of `TD3._update` (autograd, `optimizer.step()`), to float rounding.

fp32 updates run the nets' backward passes written out (`pipeline.agents.fast.backward`), without
autograd's graph; bf16 updates go through autograd, which autocast needs. Either way each
optimizer steps by `fused_adam_step` (torch's fused Adam step, bitwise, without torch.optim's
Python overhead), and with `cuda_graph` the whole update replays as a CUDA graph
(`pipeline.agents.fast.cuda_graphs`), which needs that step. `compile` compiles the gradient
functions. `tests/test_td3_fast.py` checks the two updates against each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from pipeline.agents.fast.backward import (
    MLPGradients,
    actor_forward_saving,
    actor_gradients,
    mlp_forward_saving,
    mlp_gradients,
    set_gradients,
)
from pipeline.agents.fast.cuda_graphs import Losses, UpdateGraphs
from pipeline.agents.fast.fused_adam import fused_adam_step
from pipeline.agents.nets import Q1_MEMBERS
from pipeline.agents.td3_config import Precision

if TYPE_CHECKING:
    from pipeline.agents.td3 import TD3, UpdateInputs


class FastUpdate:
    """`agent`'s update, `update(inputs, actor_step) -> losses` (what `TD3._update` does), faster."""

    def __init__(self, agent: TD3, cuda_graph: bool):
        self.agent = agent
        compiled = torch.compile if agent.config.compile else (lambda fn: fn)
        self._critic_gradients_fn = compiled(self._critic_gradients)
        self._actor_gradients_fn = compiled(self._actor_gradients)
        self._critic_loss_fn = compiled(agent.critic_loss)
        self._actor_loss_fn = compiled(agent.actor_loss)
        self._graphs = UpdateGraphs(self._update, agent.device) if cuda_graph else None

    @property
    def cuda_graph(self) -> bool:
        return self._graphs is not None

    def update(self, inputs: UpdateInputs, actor_step: bool) -> Losses:
        """One update of every seed (critics; actors and targets too with `actor_step`); returns its losses."""
        if self._graphs is None:
            return self._update(inputs, actor_step)
        return self._graphs.run(inputs, actor_step)

    def reset(self) -> None:
        """Call after replacing the optimizers' state tensors (`load_state_dict`): CUDA graphs are captured anew."""
        if self._graphs is not None:
            self._graphs.reset()

    def _update(self, inputs: UpdateInputs, actor_step: bool) -> Losses:
        """The update proper (what a CUDA graph captures)."""
        if self.agent.config.precision is Precision.fp32:
            losses = self._by_hand(inputs, actor_step)
        else:
            losses = self._autograd(inputs, actor_step)
        if actor_step:
            self.agent.update_targets()
        return losses

    def _autograd(self, inputs: UpdateInputs, actor_step: bool) -> Losses:
        """Through autograd (compiled if `compile`), which bf16 autocast needs."""
        agent = self.agent
        critic_loss = self._critic_loss_fn(inputs)
        agent.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        fused_adam_step(agent.critic_optimizer)
        losses = {"critic": critic_loss.detach()}
        if actor_step:
            agent.critic.requires_grad_(False)  # the actor loss needs no critic weight gradients
            actor_loss = self._actor_loss_fn(inputs.state)
            agent.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            agent.critic.requires_grad_(True)
            fused_adam_step(agent.actor_optimizer)
            losses["actor"] = actor_loss.detach()
        return losses

    def _by_hand(self, inputs: UpdateInputs, actor_step: bool) -> Losses:
        """The fp32 update with its backward passes written out (compiled if `compile`)."""
        agent = self.agent
        gradients, critic_loss = self._critic_gradients_fn(inputs)
        set_gradients(agent.critic.mlp, gradients)
        fused_adam_step(agent.critic_optimizer)
        losses = {"critic": critic_loss}
        if actor_step:
            gradients, losses["actor"] = self._actor_gradients_fn(inputs.state)
            set_gradients(agent.actor.mlp, gradients)
            fused_adam_step(agent.actor_optimizer)
        return losses

    @torch.no_grad()
    def _critic_gradients(self, inputs: UpdateInputs) -> tuple[MLPGradients, torch.Tensor]:
        """`TD3.critic_loss` and its gradients: for a batch of B, d/dq of mean((q - y)²) is (q - y) x 2/B."""
        critic = self.agent.critic
        target_q = self.agent.target_q(inputs)
        k, b = target_q.shape
        q, saved = mlp_forward_saving(critic.mlp, critic.pairs(torch.cat([inputs.state, inputs.action], -1)))
        error = q.view(k, 2, b) - target_q.unsqueeze(1)
        gradients = mlp_gradients(critic.mlp, saved, (error * 2 * (1 / b)).view(2 * k, b, 1))
        return gradients, error.square().mean(-1).sum()

    @torch.no_grad()
    def _actor_gradients(self, state: torch.Tensor) -> tuple[MLPGradients, torch.Tensor]:
        """`TD3.actor_loss` and the actor's gradients: d/dq1 of -mean(q1) is -1/B, through critic 1 alone."""
        actor, critic = self.agent.actor, self.agent.critic
        action, actor_saved = actor_forward_saving(actor, state)
        q1, saved = mlp_forward_saving(critic.mlp, torch.cat([state, action], -1), Q1_MEMBERS)
        grad_q1 = torch.full_like(q1, -1 / q1.shape[1])
        grad_input = mlp_gradients(critic.mlp, saved, grad_q1, members=Q1_MEMBERS, weight_grads=False, input_grad=True)
        gradients = actor_gradients(actor, actor_saved, grad_input.input[..., state.shape[-1] :])
        return gradients, -q1.squeeze(-1).mean(-1).sum()
