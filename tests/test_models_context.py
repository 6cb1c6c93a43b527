"""Context encoder C: shapes, input layouts, task features, and that C + F learn to tell tasks apart."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.context import ContextEncoder, task_feature
from pipeline.models.contrastive import contrastive_loss
from pipeline.models.forward import GaussianForwardModel, forward_loss

OBS, ACT, K, Z = 4, 2, 10, 10


pytestmark = pytest.mark.usefixtures("one_thread")


def test_output_shapes() -> None:
    encoder = ContextEncoder(OBS, ACT)
    assert encoder(torch.randn(7, K, OBS + ACT)).shape == (7, Z)
    assert encoder(torch.randn(7, K * (OBS + ACT))).shape == (7, Z)
    assert encoder(torch.randn(3, 5, K, OBS + ACT)).shape == (3, 5, Z)
    assert ContextEncoder(OBS, ACT, history=3, z_dim=2, hidden=[8])(torch.randn(4, 3, OBS + ACT)).shape == (4, 2)
    with pytest.raises(ValueError, match="segments must be"):
        encoder(torch.randn(7, K - 1, OBS + ACT))


def test_both_layouts_agree() -> None:
    torch.manual_seed(0)
    encoder = ContextEncoder(OBS, ACT)
    segments = torch.randn(16, K, OBS + ACT) * 3 + 1
    encoder.fit_normalizer(segments)
    torch.testing.assert_close(encoder(segments), encoder(segments.flatten(1)))


def test_task_feature_is_the_mean_embedding() -> None:
    torch.manual_seed(0)
    encoder = ContextEncoder(OBS, ACT)
    segments = torch.randn(100, K, OBS + ACT)
    feature = task_feature(encoder, segments)
    assert feature.shape == (Z,)
    torch.testing.assert_close(feature, encoder(segments).mean(0))


def test_trained_encoder_separates_tasks_with_different_dynamics() -> None:
    """Two tasks Δs = B_i a: the history is the only clue to which task F must predict for."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    b_mats = [torch.randn(OBS, ACT, generator=generator) for _ in range(2)]

    def batch(task: int, n: int) -> tuple[torch.Tensor, ...]:
        """n segments of K past (Δs, a) pairs, and the following transition (s, a, Δs)."""
        actions = torch.rand(n, K + 1, ACT, generator=generator) * 2 - 1
        deltas = actions @ b_mats[task].T + 0.01 * torch.randn(n, K + 1, OBS, generator=generator)
        segments = torch.cat([deltas[:, :K], actions[:, :K]], -1)
        return segments, torch.randn(n, OBS, generator=generator), actions[:, K], deltas[:, K]

    encoder = ContextEncoder(OBS, ACT)
    model = GaussianForwardModel(OBS, ACT, Z, hidden=64, layers=2)
    pooled = [torch.cat(parts) for parts in zip(batch(0, 2000), batch(1, 2000), strict=True)]
    encoder.fit_normalizer(pooled[0])
    model.fit_normalizers(pooled[1], pooled[2], pooled[3])
    optimizer = torch.optim.Adam([*encoder.parameters(), *model.parameters()], lr=1e-3)
    for step in range(300):
        task_a, task_b = step % 2, (step // 2) % 2  # same-task and different-task pairs alternate
        loss = torch.zeros(())
        contexts = []
        for task in (task_a, task_b):
            segments, s, a, ds = batch(task, 64)
            z = encoder(segments)
            contexts.append(z)
            loss = loss + forward_loss(model, s, a, z, model.delta_norm(ds))
        loss = loss + contrastive_loss(contexts[0], contexts[1], torch.tensor(task_a == task_b))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        embeddings = [encoder(batch(task, 512)[0]) for task in (0, 1)]
    features = [e.mean(0) for e in embeddings]
    spread = max((e - f).norm(dim=-1).mean().item() for e, f in zip(embeddings, features, strict=True))
    between = (features[0] - features[1]).norm().item()
    assert between > 0.5 and between > 4 * spread, (between, spread)
