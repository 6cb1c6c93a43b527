"""Model hyperparameters: docs/algorithms/translator.md defaults, as OmegaConf structured configs with range checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig, TranslatorLoss
from pipeline.schema import range_errors


@dataclass
class Models:
    context: ContextConfig = field(default_factory=ContextConfig)
    forward: ForwardModelConfig = field(default_factory=ForwardModelConfig)
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)


def test_defaults_follow_the_design() -> None:
    context, forward, translator = ContextConfig(), ForwardModelConfig(), TranslatorConfig()
    assert (context.history, context.z_dim, context.hidden, context.margin) == (10, 10, [256, 128, 64], 1.0)
    assert (forward.hidden, forward.layers, forward.future_steps, forward.lr) == (200, 4, 10, 3e-4)
    assert (forward.max_logvar, forward.min_logvar, forward.logvar_bound_weight) == (0.5, -10.0, 0.01)
    assert (translator.embed, translator.hidden, translator.layers) == (128, 256, 2)
    assert translator.lr == [3e-4, 5e-5, 1e-5] and translator.lr_shares == [1.0, 2.0, 3.0]
    assert translator.loss is TranslatorLoss.mean_l1  # the loss behind the paper's numbers, not gameable
    assert ContextConfig().hidden is not context.hidden  # no shared mutable default


def test_structured_config_merges_yaml_values() -> None:
    raw = OmegaConf.create(
        "translator:\n  loss: nll\n  lr: [1.0e-3, 1.0e-4]\ncontext:\n  hidden: [64, 32]\nforward:\n  layers: 3\n"
    )
    models: Models = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Models), raw))
    assert models.translator.loss is TranslatorLoss.nll and models.translator.lr == [1e-3, 1e-4]
    assert models.context.hidden == [64, 32] and models.forward.layers == 3
    assert range_errors(models) == []
    with pytest.raises(ValidationError):
        OmegaConf.merge(OmegaConf.structured(Models), {"translator": {"loss": "mse"}})


def test_range_errors_name_the_key() -> None:
    models = Models(context=ContextConfig(margin=0.0), forward=ForwardModelConfig(lr=2.0))
    errors = range_errors(models)
    assert any(e.startswith("context.margin = 0.0") for e in errors)
    assert any(e.startswith("forward.lr = 2.0") for e in errors)
