"""Forward model F: bounded log-variance, NLL fitting, the M-step loss, normalizers in state_dict."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.forward import GaussianForwardModel, forward_loss, multi_step_loss, nll

OBS, ACT, CTX = 3, 2, 4


pytestmark = pytest.mark.usefixtures("one_thread")


def test_log_variance_stays_within_the_learned_bounds_for_extreme_inputs() -> None:
    torch.manual_seed(0)
    model = GaussianForwardModel(OBS, ACT, CTX, hidden=32, layers=2)
    with torch.no_grad():
        model.max_logvar.copy_(torch.tensor([0.5, 1.0, 2.0]))
        model.min_logvar.copy_(torch.tensor([-10.0, -3.0, -1.0]))
    for scale in (1e-3, 1.0, 1e3, 1e6):
        s, a, z = (scale * torch.randn(512, d) for d in (OBS, ACT, CTX))
        mean, logvar = model(s, a, z)
        assert torch.isfinite(mean).all() and torch.isfinite(logvar).all()
        # the two soft clamps overshoot max_logvar by at most log(1 + e^-(max - min)) < 0.13 here
        slack = torch.log1p(torch.exp(-(model.max_logvar - model.min_logvar)))
        assert (logvar >= model.min_logvar).all()
        assert (logvar <= model.max_logvar + slack + 1e-5).all()
    # extreme inputs reach the bounds
    torch.testing.assert_close(logvar.amin(0), model.min_logvar.detach(), atol=1e-3, rtol=0)
    torch.testing.assert_close(logvar.amax(0), model.max_logvar.detach(), atol=0.05, rtol=0)


def test_nll_decreases_fitting_a_linear_gaussian_system() -> None:
    torch.manual_seed(0)
    a_mat, b_mat, noise = torch.randn(OBS, OBS) * 0.3, torch.randn(OBS, ACT), torch.tensor([0.05, 0.2, 0.5])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s, a = torch.randn(n, OBS), torch.rand(n, ACT) * 2 - 1
        return s, a, s @ a_mat.T + a @ b_mat.T + noise * torch.randn(n, OBS)

    model = GaussianForwardModel(OBS, ACT, context_dim=0, hidden=64, layers=2)
    model.fit_normalizers(*sample(10_000))
    test = sample(2000)

    def test_nll() -> float:
        with torch.no_grad():
            return nll(*model(test[0], test[1]), model.delta_norm(test[2])).item()

    initial = test_nll()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        s, a, ds = sample(256)
        loss = forward_loss(model, s, a, None, model.delta_norm(ds))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = test_nll()
    assert final < initial - 1.0, (initial, final)
    with torch.no_grad():
        _, logvar = model(test[0], test[1])
    # the predicted noise levels follow the true ones (in normalized units, up to fitting error)
    predicted_std = (logvar.mean(0) / 2).exp() * model.delta_norm.std
    assert torch.allclose(predicted_std, noise, rtol=0.25), (predicted_std, noise)


def test_multi_step_loss_is_the_mean_of_one_step_losses() -> None:
    torch.manual_seed(0)
    model = GaussianForwardModel(OBS, ACT, CTX, hidden=32, layers=2)
    b, m = 16, 5
    z = torch.randn(b, CTX)
    states, actions, targets = torch.randn(b, m, OBS), torch.randn(b, m, ACT), torch.randn(b, m, OBS)
    one_step = [forward_loss(model, states[:, i], actions[:, i], z, targets[:, i]) for i in range(m)]
    torch.testing.assert_close(multi_step_loss(model, z, states, actions, targets), torch.stack(one_step).mean())


def test_forward_model_state_dict_carries_its_normalizers() -> None:
    torch.manual_seed(0)
    model = GaussianForwardModel(OBS, ACT, CTX, hidden=32, layers=2)
    s, a, ds, z = torch.randn(100, OBS) * 5, torch.randn(100, ACT), torch.randn(100, OBS) * 3, torch.randn(CTX)
    model.fit_normalizers(s, a, ds)
    assert {"input_norm.mean", "input_norm.std", "delta_norm.mean", "delta_norm.std"} <= set(model.state_dict())
    copy = GaussianForwardModel(OBS, ACT, CTX, hidden=32, layers=2)
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy.predict_delta(s, a, z), model.predict_delta(s, a, z))
