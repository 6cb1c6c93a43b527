"""Normalizer: standardizes, inverts, and carries its statistics in state_dict."""

from __future__ import annotations

import io

import torch

from pipeline.models.normalizer import Normalizer


def test_normalizer_round_trips_through_state_dict() -> None:
    torch.manual_seed(0)
    data = torch.randn(1000, 4) * torch.tensor([1.0, 10.0, 0.1, 0.0]) + torch.tensor([5.0, -3.0, 0.0, 7.0])
    norm = Normalizer(4)
    norm.fit(data)
    assert norm.std[3] == 1.0  # a constant feature is only shifted
    torch.testing.assert_close(norm.inverse(norm(data)), data)
    buffer = io.BytesIO()
    torch.save(norm.state_dict(), buffer)
    buffer.seek(0)
    loaded = Normalizer(4)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(loaded(data), norm(data))
