"""The ensemble nets' backward passes written out, for the fast fp32 update (`pipeline.agents.fast.update`).

Autograd's graph bookkeeping (with torch.optim's) cost 4-11% of a one-seed TD3 update on a 2-core
CPU. Here a forward pass outside autograd keeps each layer's input (`mlp_forward_saving`) and
`mlp_gradients` computes from them what autograd's backward would (bias gradient: the sum over the
batch; weight gradient: x^T @ grad; input gradient: grad @ W^T; ReLU's backward from its output).
`tests/test_td3_fast.py` checks both against autograd.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from pipeline.agents.nets import EnsembleActor, EnsembleMLP, relu_of_fresh


class MLPGradients(NamedTuple):
    """What `mlp_gradients` returns: per-layer weight and bias gradients (storage layout), d loss / d input."""

    weights: list[torch.Tensor] | None
    biases: list[torch.Tensor] | None
    input: torch.Tensor | None


@torch.no_grad()
def mlp_forward_saving(
    mlp: EnsembleMLP, x: torch.Tensor, members: slice | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """`mlp(x)` (or `mlp.forward_members(x, members)`), the same operations outside autograd; also returns
    each layer's input, for `mlp_gradients`."""
    weights, biases = mlp.member_parameters(members)
    inputs = [x]
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        x = relu_of_fresh(torch.baddbmm(b, x, w))
        inputs.append(x)
    return torch.baddbmm(biases[-1], x, weights[-1].transpose(1, 2)), inputs


@torch.no_grad()
def mlp_gradients(
    mlp: EnsembleMLP,
    inputs: list[torch.Tensor],
    grad_out: torch.Tensor,
    *,
    members: slice | None = None,
    weight_grads: bool = True,
    input_grad: bool = False,
) -> MLPGradients:
    """Backpropagate `grad_out` (d loss / d output, [members, B, out]) through the pass that returned `inputs`.

    With few outputs (a Q value, an action) the output layer's weight gradient is computed as
    grad^T @ x, straight into its [out, in] storage: the same sums as autograd's x^T @ grad, up to
    rounding, and 5-10x faster than that matrix-vector product (about 2.5% of an update). Returns
    the gradients rather than setting `.grad`, so that torch.compile can trace it (`set_gradients`).
    """
    weights, _ = mlp.member_parameters(members)
    if weight_grads and members is not None:
        raise ValueError("mlp_gradients: weight gradients need all members (members=None)")
    weight_grad: list[torch.Tensor] = []
    bias_grad: list[torch.Tensor] = []
    grad = grad_out
    for layer in range(len(weights) - 1, -1, -1):
        x, w = inputs[layer], weights[layer]
        last = layer == len(weights) - 1
        if weight_grads:  # the output layer's straight into its [out, in] storage
            w_grad = torch.bmm(grad.transpose(1, 2), x) if last else torch.bmm(x.transpose(1, 2), grad)
            weight_grad.insert(0, w_grad)
            bias_grad.insert(0, grad.sum(1, keepdim=True))
        if layer == 0 and not input_grad:
            break
        outer = last and grad.shape[-1] == 1  # an outer product: elementwise, without a gemm
        grad = grad * w if outer else torch.bmm(grad, w if last else w.transpose(1, 2))
        if layer > 0:  # ReLU's backward, from its output, in place
            torch.ops.aten.threshold_backward.grad_input(grad, inputs[layer], 0, grad_input=grad)
    return MLPGradients(weight_grad or None, bias_grad or None, grad if input_grad else None)


def set_gradients(mlp: EnsembleMLP, gradients: MLPGradients) -> None:
    """Set the parameters' `.grad` to `gradients` (all members', from `gradients`)."""
    if gradients.weights is None or gradients.biases is None:
        raise ValueError("set_gradients: these gradients hold no weight gradients (weight_grads=False)")
    for params, grads in ((mlp.weights, gradients.weights), (mlp.biases, gradients.biases)):
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad


ActorSaved = tuple[list[torch.Tensor], torch.Tensor]  # the MLP's layer inputs, tanh of its output


@torch.no_grad()
def actor_forward_saving(actor: EnsembleActor, x: torch.Tensor) -> tuple[torch.Tensor, ActorSaved]:
    """`actor(x)` outside autograd; also returns what `actor_gradients` needs."""
    out, inputs = mlp_forward_saving(actor.mlp, x)
    squashed = torch.tanh(out)
    return squashed * actor.action_scale + actor.action_bias, (inputs, squashed)


@torch.no_grad()
def actor_gradients(actor: EnsembleActor, saved: ActorSaved, grad_action: torch.Tensor) -> MLPGradients:
    """The actor's weight gradients from d loss / d action, as autograd's backward of `actor(x)` computes them."""
    inputs, squashed = saved
    return mlp_gradients(actor.mlp, inputs, torch.ops.aten.tanh_backward(grad_action * actor.action_scale, squashed))
