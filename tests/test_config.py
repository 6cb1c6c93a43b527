"""params.yaml schema: the real file validates; each kind of bad value is rejected by key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipeline.config import ParamsError, Profile, load_params, validate

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return OmegaConf.to_container(OmegaConf.load(PARAMS_FILE))


def test_repository_params_are_valid() -> None:
    params = load_params(PARAMS_FILE)
    assert params.profile in Profile
    assert params.budget is getattr(params.budgets, params.profile.value)
    assert params.tasks["ant-cripple"].source is None


def test_every_profile_selects_its_budget(raw: dict) -> None:
    for profile in Profile:
        params = validate({**raw, "profile": profile.value})
        assert params.budget == getattr(params.budgets, profile.value)


def _set(raw: dict, dotted: str, value: object) -> dict:
    bad = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = bad
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return bad


_DELETE = object()


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        # unknown keys, at top level and nested, name the key and the allowed ones
        ("dealy", 350, ["dealy", "delay"]),
        ("td3.learning_rate", 1e-3, ["td3.learning_rate", "lr"]),
        ("budgets.smoke.pretrain_stepz", 5, ["budgets.smoke.pretrain_stepz", "pretrain_steps"]),
        ("tasks.walker-size", {"source": 1.0, "train": [1.0], "test": []}, ["tasks.walker-size", "hopper-size"]),
        # wrong types
        ("delay", "long", ["delay", "long"]),
        ("td3.batch_size", 25.5, ["td3.batch_size"]),
        ("budgets.default.seeds", [3], ["budgets.default.seeds"]),
        # enum values list the allowed values
        ("profile", "huge", ["profile", "smoke", "default", "paper"]),
        ("td3.precision", "fp16", ["td3.precision", "fp32", "bf16"]),
        # ranges
        ("delay", -1, ["delay", ">= 0"]),
        ("td3.lr", 0.0, ["td3.lr", "> 0"]),
        ("td3.discount", 1.5, ["td3.discount", "<= 1"]),
        ("td3.tau", float("nan"), ["td3.tau"]),
        ("budgets.paper.eval_episodes", 0, ["budgets.paper.eval_episodes", ">= 1"]),
        # task values are checked against their setting
        ("tasks.ant-cripple.train", [0, 7], ["tasks.ant-cripple.train[1]", "0, 1, 2, 3"]),
        ("tasks.halfcheetah-mass.source", -1.0, ["tasks.halfcheetah-mass.source", "> 0"]),
        ("tasks.hopper-size.test", [0.05], ["tasks.hopper-size.test", "held out"]),
        # transfer experiments: known settings, valid tasks, a pair of two of them
        ("transfer.walker-size", {"tasks": [1, 2], "pair": [1, 2]}, ["transfer.walker-size", "ant-cripple"]),
        ("transfer.ant-cripple.tasks", [0, 9], ["transfer.ant-cripple.tasks[1]", "0, 1, 2, 3"]),
        ("transfer.ant-cripple.tasks", [0], ["transfer.ant-cripple.tasks", "two distinct"]),
        ("transfer.halfcheetah-armature.pair", [0.1, 0.9], ["transfer.halfcheetah-armature.pair", "[source, target]"]),
        ("transfer.halfcheetah-armature.pair", [0.1, 0.1], ["transfer.halfcheetah-armature.pair"]),
        ("collect.action_noise", -0.1, ["collect.action_noise", ">= 0"]),
        ("translator.loss", "l2", ["translator.loss", "nll", "mean_l1"]),
        ("cycle_baseline.dynamics_cycle_weight", -1.0, ["cycle_baseline.dynamics_cycle_weight"]),
        ("budgets.default.transfer_epochs", 0, ["budgets.default.transfer_epochs", ">= 1"]),
        # methods: registered ones only; their own params blocks (MCAT's meta, sil) against their schemas
        ("meta_train.methods", ["mcat", "maml"], ["meta_train.methods[1]", "'maml'", "mcat_no_sil, mql, pearl"]),
        ("meta.batch_seed", False, ["meta.batch_seed", "batch_seeds"]),
        ("meta.transfer.margin", -1.0, ["meta.transfer.margin", ">= 0"]),
        ("sil.alpha", 0.0, ["sil.alpha", "> 0"]),
        # Table 4's other delays: not the top-level delay itself, none twice
        ("meta_train.other_delays", [200, 500], ["meta_train.other_delays[1] = 500", "top-level delay"]),
        ("meta_train.other_delays", [-5], ["meta_train.other_delays[0] = -5", ">= 0"]),
        ("meta_train.other_delays", [200, 200], ["meta_train.other_delays", "repeats"]),
        ("meta_train.other_delays", [0, 1], ["meta_train.other_delays", "repeats"]),  # both dense
        # values valid alone that would fail together deep inside a stage, or quietly change the experiment
        ("tasks.halfcheetah-armature.train", [0.1, 0.1], ["tasks.halfcheetah-armature.train", "repeats"]),
        ("tasks.halfcheetah-armature.test", [], ["tasks.halfcheetah-armature.test", "at least one"]),
        ("tasks.halfcheetah-armature.train", [[0.1], 0.2], ["tasks.halfcheetah-armature.train[0]"]),  # unhashable
        ("transfer.ant-cripple.tasks", [[0], [1]], ["transfer.ant-cripple.tasks[0]"]),
        ("tasks.halfcheetah-armature.train", [0.1], ["tasks.halfcheetah-armature.train", "contrastive_weight"]),
        ("translator.lr", [], ["translator.lr", "at least one phase"]),
        ("translator.lr", [3e-4, -1e-5], ["translator.lr[1] = -1e-05", "> 0"]),
        ("translator.lr", [7.0], ["translator.lr[0] = 7.0", "< 1"]),
        ("budgets.smoke.max_episode_steps", 15, ["budgets.smoke.max_episode_steps = 15", "future_steps = 20"]),
        ("budgets.default.collect_steps", 5, ["budgets.default.collect_steps = 5"]),
        ("budgets.quick.meta_start_steps", 15000, ["budgets.quick.meta_start_steps", "below meta_steps"]),
        ("budgets.paper.pretrain_start_steps", 10**6, ["budgets.paper.pretrain_start_steps", "below pretrain_steps"]),
        # missing keys
        ("seed", _DELETE, ["seed", "missing"]),
        ("budgets.smoke.eval_every", _DELETE, ["budgets.smoke.eval_every"]),
    ],
)
def test_bad_params_are_rejected_naming_the_key(raw: dict, dotted: str, value: object, expected: list[str]) -> None:
    with pytest.raises(ParamsError) as info:
        validate(_set(raw, dotted, value))
    for fragment in expected:
        assert fragment in str(info.value)


def test_an_other_delay_that_is_the_top_level_delay_in_effect_is_rejected(raw: dict) -> None:
    with pytest.raises(ParamsError, match=r"meta_train.other_delays\[0\] = 0: .*0 and 1 are the same"):
        validate(_set(_set(raw, "delay", 1), "meta_train.other_delays", [0]))


def test_unparsable_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("delay: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params\.yaml"):
        load_params(bad)
