"""fused_adam_step: bitwise torch's fused Adam step, and torch's own step where it does not apply."""

from __future__ import annotations

import pytest
import torch

from pipeline.agents.fast.fused_adam import fused_adam_step


def trained(step_with_ours: bool, **adam: object) -> tuple[list[torch.Tensor], dict]:
    generator = torch.Generator().manual_seed(0)
    params = [
        torch.randn(4, 3, generator=generator).requires_grad_(),
        torch.randn(3, generator=generator).requires_grad_(),
    ]
    optimizer = torch.optim.Adam(params, lr=1e-2, **adam)
    for _ in range(4):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator)
        fused_adam_step(optimizer) if step_with_ours else optimizer.step()
    return [p.detach().clone() for p in params], optimizer.state_dict()


@pytest.mark.parametrize("adam", [{"fused": True}, {"fused": True, "weight_decay": 0.1}, {"foreach": True},
                                  {"fused": True, "amsgrad": True}])  # fmt: skip
def test_fused_adam_step_is_optimizer_step_bitwise(adam: dict) -> None:
    (ours, our_state), (torchs, torch_state) = trained(True, **adam), trained(False, **adam)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs, strict=True))
    for index, state in torch_state["state"].items():
        assert all(torch.equal(our_state["state"][index][k], v) for k, v in state.items())
    assert float(torch_state["state"][0]["step"]) == 4


def test_fused_adam_step_bypasses_torchs_step_once_the_state_exists() -> None:
    param = torch.ones(3, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=0.1, fused=True)
    param.grad = torch.ones(3)
    fused_adam_step(optimizer)  # the first step creates the state through torch's step
    optimizer.step = lambda *args, **kwargs: pytest.fail("fell back to torch's step")
    before = param.detach().clone()
    fused_adam_step(optimizer)
    assert not torch.equal(param.detach(), before) and float(optimizer.state[param]["step"]) == 2
