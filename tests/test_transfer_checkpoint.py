"""Checkpoints of one translator-training run: exact round trip, plain-tensor format, rejection by field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.models.config import ContextConfig, CycleTranslatorConfig, ForwardModelConfig, TranslatorConfig
from pipeline.transfer.checkpoint import CHECKPOINT_VERSION, TransferModels, build_models, load_models, save_models

OBS, ACT = 7, 3
SETTING = "halfcheetah-armature"
TASKS = [0.1, 0.3, 0.5]
META = {"setting": SETTING, "tasks": TASKS, "seed": 4, "pair": [0.1, 0.5], "profile": "smoke"}
CONTEXT = ContextConfig(hidden=[16])
FORWARD = ForwardModelConfig(hidden=16, layers=1)
TRANSLATOR = TranslatorConfig(embed=8, hidden=16, layers=1)
CYCLE = CycleTranslatorConfig(disc_hidden=16)

pytestmark = pytest.mark.usefixtures("one_thread")


def build(seed: int, **changes: Any) -> TransferModels:
    torch.manual_seed(seed)
    configs = {"context": CONTEXT, "forward": FORWARD, "translator": TRANSLATOR, "cycle": CYCLE} | changes
    return build_models(OBS, ACT, -torch.ones(ACT), torch.ones(ACT), **configs)


def trained(seed: int) -> TransferModels:
    """Built models with every tensor, buffers (normalizers, bounds) included, set to random values."""
    models = build(seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in models:
            for tensor in module.state_dict().values():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return models


def features() -> torch.Tensor:
    return torch.randn(len(TASKS), CONTEXT.z_dim, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, TransferModels]:
    path = tmp_path / "seed0.pt"
    models = trained(0)
    save_models(path, models, features(), META)
    return path, models


def test_every_model_has_weights_in_the_checkpoint(saved: tuple[Path, TransferModels]) -> None:
    path, models = saved
    state = torch.load(path, weights_only=True)  # tensors, strings and numbers only
    assert state["version"] == CHECKPOINT_VERSION
    assert state["meta"] == META
    assert set(TransferModels._fields) <= set(state)
    for name, module in models._asdict().items():
        assert state[name].keys() == module.state_dict().keys(), name


def test_load_restores_every_tensor_exactly(saved: tuple[Path, TransferModels]) -> None:
    path, models = saved
    fresh = build(1)
    differed = 0
    for name in TransferModels._fields:
        before, want = getattr(fresh, name).state_dict(), getattr(models, name).state_dict()
        differed += sum(not torch.equal(before[key], want[key]) for key in want)
    assert differed > 0
    z, meta = load_models(path, fresh, setting=SETTING, tasks=TASKS)
    for name in TransferModels._fields:
        got, want = getattr(fresh, name).state_dict(), getattr(models, name).state_dict()
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), f"{name}.{key}"
    assert torch.equal(z, features())
    assert meta == META


def test_loaded_models_compute_what_the_saved_ones_did(saved: tuple[Path, TransferModels]) -> None:
    path, models = saved
    fresh = build(1)
    load_models(path, fresh, setting=SETTING, tasks=TASKS)
    states, actions = torch.randn(5, OBS), torch.rand(5, ACT) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fresh.pair_translator(states, actions), models.pair_translator(states, actions))
        torch.testing.assert_close(fresh.cycle_baseline(states, actions), models.cycle_baseline(states, actions))


def test_tasks_with_none_round_trip(tmp_path: Path) -> None:
    path, tasks = tmp_path / "ant.pt", [None, 0, 2]
    save_models(path, trained(0), features(), {"setting": "ant-cripple", "tasks": tasks})
    _, meta = load_models(path, build(1), setting="ant-cripple", tasks=tasks)
    assert meta["tasks"] == tasks


def test_tasks_are_compared_by_value_not_by_container(tmp_path: Path) -> None:
    path = tmp_path / "seed0.pt"
    save_models(path, trained(0), features(), META)
    load_models(path, build(1), setting=SETTING, tasks=tuple(TASKS))


def test_no_temp_files_are_left_beside_the_checkpoint(saved: tuple[Path, TransferModels]) -> None:
    path, models = saved
    save_models(path, models, features(), META)  # replacing an existing checkpoint
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def rejects(path: Path, field: str, **expected: Any) -> None:
    """load_models raises a ValueError whose message names the file and the field."""
    kwargs = {"setting": SETTING, "tasks": TASKS} | expected
    with pytest.raises(ValueError) as info:
        load_models(path, build(1), **kwargs)
    message = str(info.value)
    assert str(path) in message and f"'{field}'" in message, message


def test_rejects_another_setting(saved: tuple[Path, TransferModels]) -> None:
    rejects(saved[0], "meta.setting", setting="halfcheetah-mass")


@pytest.mark.parametrize("tasks", [[0.1, 0.3], [0.1, 0.3, 0.7], [0.5, 0.3, 0.1]])
def test_rejects_other_tasks(saved: tuple[Path, TransferModels], tasks: list[float]) -> None:
    rejects(saved[0], "meta.tasks", tasks=tasks)


@pytest.mark.parametrize("version", [CHECKPOINT_VERSION + 1, 0, None])
def test_rejects_another_version(saved: tuple[Path, TransferModels], version: int | None) -> None:
    path = saved[0]
    state = torch.load(path, weights_only=True)
    if version is None:
        del state["version"]
    else:
        state["version"] = version
    torch.save(state, path)
    rejects(path, "version")


def test_rejects_a_checkpoint_without_a_model(saved: tuple[Path, TransferModels]) -> None:
    path = saved[0]
    state = torch.load(path, weights_only=True)
    del state["translator"]
    torch.save(state, path)
    rejects(path, "translator")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"forward": ForwardModelConfig(hidden=16, layers=2)}, "pair_forward"),
        ({"translator": TranslatorConfig(embed=8, hidden=32, layers=1)}, "pair_translator"),
        ({"cycle": CycleTranslatorConfig(disc_hidden=32)}, "cycle_baseline"),
        ({"context": ContextConfig(hidden=[24])}, "encoder"),
    ],
)
def test_rejects_models_of_another_size(saved: tuple[Path, TransferModels], changes: dict, field: str) -> None:
    path = saved[0]
    with pytest.raises(ValueError, match=re.escape(f"{path}: field '{field}'")):
        load_models(path, build(1, **changes), setting=SETTING, tasks=TASKS)
