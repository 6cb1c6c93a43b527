"""Shared fixtures: the repository root and a smoke-budget copy of params.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
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
