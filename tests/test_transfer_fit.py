"""Fitting F, C and H on fixed data: on a task pair whose target negates the source's actions, the
fitted translators learn ã ≈ -a (one pair, and conditioned on learned task features)."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig
from pipeline.models.context import ContextEncoder
from pipeline.models.forward import GaussianForwardModel
from pipeline.models.translator import ActionTranslator
from pipeline.transfer.fit import (
    Schedule,
    fit_context_and_forward,
    fit_forward_model,
    fit_translator,
    task_features,
)
from pipeline.transfer.windows import TaskData, Windows

pytestmark = pytest.mark.usefixtures("one_thread")

OBS, ACT = 3, 2
LOW, HIGH = -torch.ones(ACT), torch.ones(ACT)
B = torch.tensor([[1.0, 0.5], [-0.5, 1.0], [0.3, -0.8]])  # Δs = sign * B a
TOLERANCE = 0.15  # mean |ã - (-a)| over actions in [-0.8, 0.8] (H's tanh saturates at the bounds)
FORWARD = ForwardModelConfig(hidden=32, layers=2, lr=3e-3, batch_size=100, future_steps=2)
TRANSLATOR = TranslatorConfig(embed=16, hidden=32, layers=1, lr=[3e-3, 1e-3], lr_shares=[1.0, 1.0])


def synthetic_task(sign: float, episodes: int, length: int, generator: torch.Generator) -> TaskData:
    """Random actions in [-1, 1]; s' = s + sign * B a + small noise; whole episodes of `length` steps."""
    actions = torch.rand(episodes, length, ACT, generator=generator) * 2 - 1
    deltas = sign * actions @ B.T + 0.01 * torch.randn(episodes, length, OBS, generator=generator)
    start = torch.randn(episodes, 1, OBS, generator=generator)
    states = torch.cat([start, start + deltas.cumsum(1)[:, :-1]], 1)
    frame = torch.arange(length).repeat(episodes)
    return TaskData(states.reshape(-1, OBS), actions.reshape(-1, ACT), deltas.reshape(-1, OBS), frame, length - frame)


def held_out_actions(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(500, OBS, generator=generator), (torch.rand(500, ACT, generator=generator) * 2 - 1) * 0.8


def test_one_pair_translator_learns_the_negated_action() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    source = synthetic_task(+1.0, 40, 50, generator)
    target = synthetic_task(-1.0, 40, 50, generator)
    model = GaussianForwardModel(OBS, ACT, 0, hidden=FORWARD.hidden, layers=FORWARD.layers)
    history = fit_forward_model(model, target, FORWARD, Schedule(3, 300), generator=generator, norm_data=[source])
    assert history[-1]["forward"] < history[0]["forward"]
    translator = ActionTranslator(OBS, ACT, LOW, HIGH, embed=16, hidden=32, layers=1)
    history = fit_translator(translator, model, [source], TRANSLATOR, Schedule(2, 300), generator=generator)
    assert history[-1]["translator"] < history[0]["translator"]
    states, actions = held_out_actions(generator)
    with torch.no_grad():
        error = (translator(states, actions) + actions).abs().mean().item()
    assert error < TOLERANCE, f"mean |H(s, a) + a| = {error:.3f}"


def test_multi_task_translator_uses_the_task_features() -> None:
    """C and F on two tasks (actions as is / negated); H(z(0), z(1)) negates, H(z(0), z(0)) keeps."""
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(1)
    tasks = [synthetic_task(sign, 40, 50, generator) for sign in (+1.0, -1.0)]
    context = ContextConfig(history=3, z_dim=4, hidden=[32], lr=3e-3, feature_segments=256)
    windows = [Windows(d, context.history, FORWARD.future_steps) for d in tasks]
    encoder = ContextEncoder(OBS, ACT, history=context.history, z_dim=context.z_dim, hidden=context.hidden)
    model = GaussianForwardModel(OBS, ACT, context.z_dim, hidden=FORWARD.hidden, layers=FORWARD.layers)
    history = fit_context_and_forward(encoder, model, windows, context, FORWARD, Schedule(3, 300), generator=generator)
    assert history[-1]["forward"] < history[0]["forward"]
    features = task_features(encoder, windows, context.feature_segments, generator)
    assert torch.linalg.vector_norm(features[0] - features[1]) > 0.5 * context.margin

    translator = ActionTranslator(OBS, ACT, LOW, HIGH, context.z_dim, embed=16, hidden=32, layers=1)
    fit_translator(translator, model, tasks, TRANSLATOR, Schedule(2, 500), generator=generator, features=features)
    states, actions = held_out_actions(generator)
    with torch.no_grad():
        across = (translator(states, actions, features[0], features[1]) + actions).abs().mean().item()
        same = (translator(states, actions, features[0], features[0]) - actions).abs().mean().item()
    assert across < TOLERANCE, f"source 0 -> target 1: mean |H + a| = {across:.3f}"
    assert same < TOLERANCE, f"source 0 -> target 0: mean |H - a| = {same:.3f}"


def test_fits_are_deterministic_given_seeds() -> None:
    def run() -> list[dict[str, float]]:
        torch.manual_seed(2)
        generator = torch.Generator().manual_seed(2)
        data = synthetic_task(+1.0, 5, 20, generator)
        model = GaussianForwardModel(OBS, ACT, 0, hidden=8, layers=1)
        return fit_forward_model(model, data, FORWARD, Schedule(2, 5), generator=generator)

    assert run() == run()


def test_fits_match_the_per_tensor_adam_bitwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fits' Adam runs foreach (fewer kernel calls) and changes no bit against torch's CPU default."""

    def run() -> list[torch.Tensor]:
        torch.manual_seed(4)
        generator = torch.Generator().manual_seed(4)
        tasks = [synthetic_task(sign, 4, 20, generator) for sign in (+1.0, -1.0)]
        context = ContextConfig(history=3, z_dim=4, hidden=[16], feature_segments=16)
        windows = [Windows(d, context.history, FORWARD.future_steps) for d in tasks]
        encoder = ContextEncoder(OBS, ACT, history=context.history, z_dim=context.z_dim, hidden=context.hidden)
        model = GaussianForwardModel(OBS, ACT, context.z_dim, hidden=16, layers=1)
        fit_context_and_forward(encoder, model, windows, context, FORWARD, Schedule(2, 20), generator=generator)
        features = task_features(encoder, windows, context.feature_segments, generator)
        translator = ActionTranslator(OBS, ACT, LOW, HIGH, context.z_dim, embed=8, hidden=16, layers=1)
        fit_translator(translator, model, tasks, TRANSLATOR, Schedule(2, 20), generator=generator, features=features)
        return [p.detach().clone() for m in (encoder, model, translator) for p in m.parameters()]

    fast = run()
    per_tensor_adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **kw: per_tensor_adam(*a, **(kw | {"foreach": False})))
    plain = run()
    assert all(torch.equal(a, b) for a, b in zip(fast, plain, strict=True))


def test_bad_arguments_are_rejected() -> None:
    generator = torch.Generator().manual_seed(3)
    data = synthetic_task(+1.0, 5, 20, generator)
    model = GaussianForwardModel(OBS, ACT, 4, hidden=8, layers=1)
    translator = ActionTranslator(OBS, ACT, LOW, HIGH, 4, embed=8, hidden=8, layers=1)
    with pytest.raises(ValueError, match="task features"):
        fit_translator(translator, model, [data, data], TRANSLATOR, Schedule(1, 1), generator=generator)
    with pytest.raises(ValueError, match="2 tasks"):
        fit_translator(
            translator, model, [data, data], TRANSLATOR, Schedule(1, 1), generator=generator, features=torch.zeros(3, 4)
        )
    encoder = ContextEncoder(OBS, ACT, history=3, z_dim=4, hidden=[8])
    one_task, short = [Windows(data, 3, 2)], Schedule(1, 1)
    with pytest.raises(ValueError, match="two tasks"):
        fit_context_and_forward(encoder, model, one_task, ContextConfig(history=3), FORWARD, short, generator=generator)
