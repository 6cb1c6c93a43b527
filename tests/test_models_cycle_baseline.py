"""The cycle-consistency baseline translator: bounds, each loss term, gradient isolation, determinism,
and the negated-action task.

Negated-action task: source dynamics Δs = B a, target dynamics Δs = B (-a) (+ small noise), B a fixed
random [4, 2] matrix of full column rank, actions uniform on [-1, 1] in both tasks: the one correct
translation is H(s, a) = -a, and it is also the one whose outputs match the target actions' distribution.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.models.config import CycleTranslatorConfig
from pipeline.models.cycle_baseline import CycleTranslator, cycle_losses, train_cycle_translator
from pipeline.models.epochs import Schedule
from pipeline.models.forward import GaussianForwardModel, forward_loss

OBS, ACT = 4, 2
LOW, HIGH = -torch.ones(ACT), torch.ones(ACT)
SMALL = {"embed": 32, "hidden": 64, "disc_hidden": 64}
TOLERANCE = 0.1  # mean |H(s, a) - (-a)| on held-out a in [-0.8, 0.8]; 0.01-0.02 over 9 seeds

pytestmark = pytest.mark.usefixtures("one_thread")


def transitions(
    b_mat: torch.Tensor, sign: float, n: int, generator: torch.Generator, limit: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    states = torch.randn(n, OBS, generator=generator)
    actions = (torch.rand(n, ACT, generator=generator) * 2 - 1) * limit
    deltas = (sign * actions) @ b_mat.T + 0.01 * torch.randn(n, OBS, generator=generator)
    return states, actions, deltas


def random_batch(n: int = 64) -> tuple[torch.Tensor, ...]:
    """source states, actions, normalized Δs, target states, actions."""
    return (
        torch.randn(n, OBS),
        torch.rand(n, ACT) * 2 - 1,
        torch.randn(n, OBS),
        torch.randn(n, OBS),
        torch.rand(n, ACT) * 2 - 1,
    )


class Scaled(nn.Module):
    """H(s, a) = factor * a: a translator with a known inverse."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor
        self.register_buffer("action_scale", torch.ones(ACT))

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.factor * actions


@pytest.fixture(scope="module")
def negated_task() -> tuple[torch.Tensor, GaussianForwardModel]:
    """B and a small forward model F (no context) trained on the target task."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    b_mat = torch.randn(OBS, ACT, generator=generator)
    s, a, ds = transitions(b_mat, -1.0, 20_000, generator)
    model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=64, layers=2)
    model.fit_normalizers(s, a, ds)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        idx = torch.randint(0, len(s), (256,), generator=generator)
        loss = forward_loss(model, s[idx], a[idx], None, model.delta_norm(ds[idx]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return b_mat, model


def test_translated_actions_have_the_shape_and_stay_in_bounds() -> None:
    torch.manual_seed(0)
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 0.5])
    model = CycleTranslator(OBS, ACT, low, high, **SMALL)
    with torch.no_grad():
        for p in model.translator.parameters():
            p.mul_(20)  # drive the tanh into saturation
        actions = model(1e3 * torch.randn(7, 50, OBS), torch.rand(7, 50, ACT) * (high - low) + low)
    assert actions.shape == (7, 50, ACT)
    assert ((actions >= low) & (actions <= high)).all()
    assert ((actions - low).abs().lt(1e-3) | (actions - high).abs().lt(1e-3)).all()  # saturates at the bounds


def test_fit_normalizers_fits_translator_inverse_and_discriminator() -> None:
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    states = 5 + 3 * torch.randn(1000, OBS)
    model.fit_normalizers(states)
    for module in (model.translator, model.inverse, model.discriminator):
        torch.testing.assert_close(module.state_norm.mean, states.mean(0))
        torch.testing.assert_close(module.state_norm.std, states.std(0, correction=0))


def test_domain_cycle_is_zero_for_exact_inverses_and_measures_the_mismatch_otherwise() -> None:
    torch.manual_seed(0)
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=16, layers=1)
    s, a, ds, s_tgt, a_tgt = random_batch()
    model.translator, model.inverse = Scaled(-2.0), Scaled(-0.5)
    exact = cycle_losses(model, forward_model, s, a, ds, s_tgt, a_tgt, CycleTranslatorConfig())
    assert exact.domain_cycle.item() == pytest.approx(0.0, abs=1e-6)
    model.inverse = Scaled(0.5)  # H_inv(H(a)) = -a and H(H_inv(a)) = -a: each misses by 2|a|
    wrong = cycle_losses(model, forward_model, s, a, ds, s_tgt, a_tgt, CycleTranslatorConfig())
    expected = 2 * (a.abs().mean() + a_tgt.abs().mean())
    assert wrong.domain_cycle.item() == pytest.approx(expected.item(), rel=1e-5)


def test_generator_loss_is_the_weighted_sum_of_its_terms() -> None:
    torch.manual_seed(0)
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=16, layers=1)
    config = CycleTranslatorConfig(adversarial_weight=0.3, domain_cycle_weight=2.0, dynamics_cycle_weight=7.0)
    losses = cycle_losses(model, forward_model, *random_batch(), config)
    assert all(v.shape == () and v.item() > 0 for v in losses)
    expected = 0.3 * losses.adversarial + 2.0 * losses.domain_cycle + 7.0 * losses.dynamics_cycle
    torch.testing.assert_close(losses.generator, expected)


def test_generator_loss_reaches_only_the_translators_and_discriminator_loss_only_d() -> None:
    torch.manual_seed(0)
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=32, layers=2)
    losses = cycle_losses(model, forward_model, *random_batch(), CycleTranslatorConfig())
    losses.generator.backward(retain_graph=True)
    assert all(p.grad is None for p in forward_model.parameters())
    assert all(p.requires_grad for p in forward_model.parameters())  # F is left trainable
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator_parameters())
    model.zero_grad(set_to_none=True)
    losses.discriminator.backward()
    assert all(p.grad is None for p in model.generator_parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.discriminator.parameters())


def test_discriminator_loss_falls_on_separable_data() -> None:
    """Target actions near +0.8, translated actions (H's output at init) near 0: D learns to tell them apart."""
    torch.manual_seed(0)
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=16, layers=1)
    with torch.no_grad():
        model.translator.trunk[-1].weight.zero_()
        model.translator.trunk[-1].bias.zero_()  # H(s, a) = 0
    s, a, ds, s_tgt, _ = random_batch(256)
    a_tgt = 0.8 + 0.05 * torch.randn(256, ACT)
    config = CycleTranslatorConfig()
    optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=1e-3)
    before = cycle_losses(model, forward_model, s, a, ds, s_tgt, a_tgt, config)
    for _ in range(200):
        loss = cycle_losses(model, forward_model, s, a, ds, s_tgt, a_tgt, config).discriminator
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = cycle_losses(model, forward_model, s, a, ds, s_tgt, a_tgt, config)
    assert before.discriminator.item() > 0.1
    assert after.discriminator.item() < 0.01
    assert after.adversarial.item() > 0.8  # and H's outputs now score as fake


def small_config(**changes: float) -> CycleTranslatorConfig:
    return CycleTranslatorConfig(**{"batch_size": 32, **changes})


SHORT = Schedule(epochs=2, updates_per_epoch=5)


def test_training_is_deterministic_given_the_generator() -> None:
    def run(seed: int) -> tuple[list[dict[str, float]], torch.Tensor]:
        torch.manual_seed(0)
        model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
        forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=16, layers=1)
        data = torch.Generator().manual_seed(123)
        source = (
            torch.randn(500, OBS, generator=data),
            torch.rand(500, ACT, generator=data),
            torch.randn(500, OBS, generator=data),
        )
        target = (torch.randn(300, OBS, generator=data), torch.rand(300, ACT, generator=data))
        logged: list[tuple[int, dict[str, float]]] = []
        history = train_cycle_translator(
            model,
            forward_model,
            source,
            target,
            small_config(),
            SHORT,
            generator=torch.Generator().manual_seed(seed),
            on_epoch=lambda epoch, means: logged.append((epoch, means)),
        )
        assert logged == list(enumerate(history))
        return history, model(source[0][:10], source[1][:10])

    first, actions = run(1)
    again, actions_again = run(1)
    other, _ = run(2)
    assert len(first) == 2 and set(first[0]) == {
        "adversarial",
        "domain_cycle",
        "dynamics_cycle",
        "generator",
        "discriminator",
    }
    assert first == again
    torch.testing.assert_close(actions, actions_again, rtol=0, atol=0)
    assert first != other


def test_training_leaves_the_forward_model_unchanged() -> None:
    torch.manual_seed(0)
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=16, layers=1)
    before = {k: v.clone() for k, v in forward_model.state_dict().items()}
    source = (torch.randn(100, OBS), torch.rand(100, ACT), torch.randn(100, OBS))
    train_cycle_translator(model, forward_model, source, source[:2], small_config(), SHORT, generator=torch.Generator())
    for key, value in forward_model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert all(p.grad is None for p in forward_model.parameters())


def test_mismatched_rows_are_rejected() -> None:
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    forward_model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=16, layers=1)
    source = (torch.randn(10, OBS), torch.rand(9, ACT), torch.randn(10, OBS))
    with pytest.raises(ValueError, match="source"):
        train_cycle_translator(
            model, forward_model, source, source[:2], small_config(), SHORT, generator=torch.Generator()
        )


def test_translator_learns_the_negated_action(negated_task: tuple[torch.Tensor, GaussianForwardModel]) -> None:
    b_mat, forward_model = negated_task
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(1)
    s, a, ds = transitions(b_mat, +1.0, 20_000, generator)
    s_tgt, a_tgt, _ = transitions(b_mat, -1.0, 20_000, generator)
    model = CycleTranslator(OBS, ACT, LOW, HIGH, **SMALL)
    config = small_config(batch_size=256, lr=1e-3)
    history = train_cycle_translator(
        model,
        forward_model,
        (s, a, forward_model.delta_norm(ds)),
        (s_tgt, a_tgt),
        config,
        Schedule(epochs=3, updates_per_epoch=100),
        generator=generator,
    )
    assert history[-1]["dynamics_cycle"] < history[0]["dynamics_cycle"]
    held_out_s, held_out_a, _ = transitions(b_mat, +1.0, 2000, generator, limit=0.8)
    with torch.no_grad():
        error = (model(held_out_s, held_out_a) + held_out_a).abs().mean().item()
        back = (model.inverse(held_out_s, -held_out_a) - held_out_a).abs().mean().item()
    assert error < TOLERANCE, f"mean |H(s, a) + a| = {error:.4f}"
    assert back < TOLERANCE, f"mean |H_inv(s, -a) - a| = {back:.4f}"
