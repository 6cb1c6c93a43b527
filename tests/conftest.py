"""Shared fixtures: the repository root, a smoke-budget copy of params.yaml, one torch thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smoke_params(tmp_path: Path) -> Path:
    """params.yaml with `profile: smoke`, written to a temp folder."""
    raw = OmegaConf.load(ROOT / "params.yaml")
    raw.profile = "smoke"
    path = tmp_path / "params.yaml"
    OmegaConf.save(raw, path)
    return path


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small models: intra-op threads only add overhead, and much more on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
