"""Action translator H on the negated-action task, its frozen-F loss, bounds and the context variant.

Source dynamics Δs = B a, target dynamics Δs = B (-a) (+ small noise), B a fixed random [4, 2]
matrix of full column rank: the one correct translation is H(s, a) = -a.
"""

from __future__ import annotations

import pytest
import torch

from pipeline.models.forward import GaussianForwardModel, forward_loss
from pipeline.models.translator import ActionTranslator, TranslatorLoss, translator_loss

OBS, ACT, CTX = 4, 2, 3
LOW, HIGH = -torch.ones(ACT), torch.ones(ACT)
TOLERANCE = 0.1  # mean |H(s, a) - (-a)| on held-out a in [-0.8, 0.8]; about 0.01-0.03 is typical


pytestmark = pytest.mark.usefixtures("one_thread")


def transitions(
    b_mat: torch.Tensor, sign: float, n: int, generator: torch.Generator, limit: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    states = torch.randn(n, OBS, generator=generator)
    actions = (torch.rand(n, ACT, generator=generator) * 2 - 1) * limit
    deltas = (sign * actions) @ b_mat.T + 0.01 * torch.randn(n, OBS, generator=generator)
    return states, actions, deltas


@pytest.fixture(scope="module")
def negated_task() -> tuple[torch.Tensor, GaussianForwardModel]:
    """B and a forward model F (no context) trained on the target task."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    b_mat = torch.randn(OBS, ACT, generator=generator)
    s, a, ds = transitions(b_mat, -1.0, 20_000, generator)
    model = GaussianForwardModel(OBS, ACT, context_dim=0)
    model.fit_normalizers(s, a, ds)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(400):
        idx = torch.randint(0, len(s), (256,), generator=generator)
        loss = forward_loss(model, s[idx], a[idx], None, model.delta_norm(ds[idx]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return b_mat, model


@pytest.mark.parametrize("kind", list(TranslatorLoss))
def test_translator_learns_the_negated_action(
    negated_task: tuple[torch.Tensor, GaussianForwardModel], kind: TranslatorLoss
) -> None:
    b_mat, model = negated_task
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(1)
    s, a, ds = transitions(b_mat, +1.0, 20_000, generator)
    translator = ActionTranslator(OBS, ACT, LOW, HIGH)
    translator.state_norm.fit(s)
    optimizer = torch.optim.Adam(translator.parameters(), lr=1e-3)
    for _ in range(300):
        idx = torch.randint(0, len(s), (256,), generator=generator)
        loss = translator_loss(translator, model, s[idx], a[idx], model.delta_norm(ds[idx]), kind=kind)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    held_out_s, held_out_a, _ = transitions(b_mat, +1.0, 2000, generator, limit=0.8)
    with torch.no_grad():
        error = (translator(held_out_s, held_out_a) + held_out_a).abs().mean().item()
    assert error < TOLERANCE, f"{kind.name}: mean |H(s, a) + a| = {error:.4f}"


@pytest.mark.parametrize("kind", list(TranslatorLoss))
def test_translator_loss_gives_no_gradient_to_the_forward_model(kind: TranslatorLoss) -> None:
    torch.manual_seed(0)
    model = GaussianForwardModel(OBS, ACT, CTX, hidden=32, layers=2)
    translator = ActionTranslator(OBS, ACT, LOW, HIGH, CTX, embed=16, hidden=32)
    z_src = torch.randn(CTX, requires_grad=True)
    z_tgt = torch.randn(CTX, requires_grad=True)
    loss = translator_loss(
        translator, model, torch.randn(64, OBS), torch.rand(64, ACT) * 2 - 1, torch.randn(64, OBS), z_src, z_tgt, kind
    )
    loss.backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())  # F is left trainable
    assert z_src.grad is None and z_tgt.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in translator.parameters())


def test_output_stays_within_the_action_bounds() -> None:
    torch.manual_seed(0)
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 0.5])
    translator = ActionTranslator(OBS, ACT, low, high)
    with torch.no_grad():
        for p in translator.parameters():
            p.mul_(20)  # drive the tanh into saturation
        actions = translator(1e3 * torch.randn(1000, OBS), torch.rand(1000, ACT) * (high - low) + low)
    assert ((actions >= low) & (actions <= high)).all()
    assert actions.amin(0).allclose(low, atol=1e-3) and actions.amax(0).allclose(high, atol=1e-3)


def test_context_conditioned_translator_shapes_and_checks() -> None:
    torch.manual_seed(0)
    translator = ActionTranslator(OBS, ACT, LOW, HIGH, CTX)
    s, a = torch.randn(32, OBS), torch.rand(32, ACT) * 2 - 1
    per_sample = translator(s, a, torch.randn(32, CTX), torch.randn(32, CTX))
    assert per_sample.shape == (32, ACT)
    z_src, z_tgt = torch.randn(CTX), torch.randn(CTX)  # one task feature per task, broadcast over the batch
    torch.testing.assert_close(
        translator(s, a, z_src, z_tgt), translator(s, a, z_src.expand(32, CTX), z_tgt.expand(32, CTX))
    )
    model = GaussianForwardModel(OBS, ACT, CTX, hidden=32, layers=2)
    loss = translator_loss(translator, model, s, a, torch.randn(32, OBS), z_src, z_tgt)
    assert loss.shape == () and torch.isfinite(loss)
    with pytest.raises(ValueError, match="pass both"):
        translator(s, a)
    with pytest.raises(ValueError, match="no context"):
        ActionTranslator(OBS, ACT, LOW, HIGH)(s, a, z_src, z_tgt)


class UnsureAwayFromData(torch.nn.Module):
    """A toy target F, accurate near its data (actions near 0) and ever less sure away from it: mean = a
    on every Δs dimension, log-variance -4 + 4 |a|^2, so that it is largest at the action bounds."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))

    def forward(self, states: torch.Tensor, actions: torch.Tensor, z: torch.Tensor | None = None):
        mean = self.gain * actions.mean(-1, keepdim=True).expand(*actions.shape[:-1], OBS)
        logvar = (-4.0 + 4.0 * actions.square().mean(-1, keepdim=True)).expand_as(mean)
        return mean, logvar


def share_at_bounds(kind: TranslatorLoss, hold_variance: bool) -> float:
    """Train H through the toy F on source Δs that F's mean can reach from interior actions (about
    0.3 s_0) but that carry unpredictable noise; return the share of H's action components at the bounds."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = UnsureAwayFromData()
    translator = ActionTranslator(OBS, ACT, LOW, HIGH)
    states = torch.randn(4096, OBS, generator=generator)
    translator.state_norm.fit(states)
    actions = torch.rand(4096, ACT, generator=generator) * 2 - 1
    deltas = 0.3 * states[:, :1].expand(-1, OBS) + 2 * torch.randn(4096, OBS, generator=generator)
    optimizer = torch.optim.Adam(translator.parameters(), lr=1e-3)
    for _ in range(600):
        idx = torch.randint(0, 4096, (256,), generator=generator)
        loss = translator_loss(
            translator, model, states[idx], actions[idx], deltas[idx], kind=kind, hold_variance=hold_variance
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((translator(states, actions).abs() > 0.99).float().mean())


@pytest.mark.parametrize("kind", list(TranslatorLoss))
def test_shipped_losses_do_not_drive_actions_to_where_f_is_unsure(kind: TranslatorLoss) -> None:
    assert share_at_bounds(kind, hold_variance=True) < 0.05


def test_eq3_with_f_variance_free_drives_actions_to_the_bounds() -> None:
    """The mechanism the shipped losses remove: the NLL falls as H moves where F's variance is large."""
    assert share_at_bounds(TranslatorLoss.nll, hold_variance=False) > 0.8
