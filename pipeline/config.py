"""The params.yaml schema (OmegaConf structured config) and its validation.

Every stage calls `load_params` before any work: a wrong key, type or range stops the stage
with a `ParamsError` naming the key and the allowed values, and no output is touched.

The schema is `Params` plus one top-level block per params block a registered meta-RL method owns
(pipeline.methods.registry: MCAT's `meta` and `sil`, ...), each validated against the method's schema
dataclass. Task values are checked by their setting (pipeline.envs.registry).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, get_args, get_origin, get_type_hints

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from pipeline.agents.td3_config import TD3Config
from pipeline.envs.registry import check_task, setting_names
from pipeline.methods import registry as methods
from pipeline.models.config import ContextConfig, CycleTranslatorConfig, ForwardModelConfig, TranslatorConfig
from pipeline.schema import bounded, range_errors


class ParamsError(ValueError):
    """params.yaml does not match the schema; the message names the key."""


class Profile(Enum):
    smoke = "smoke"  # CI: the whole DAG in minutes; numbers mean nothing
    quick = "quick"  # a fast look at every stage (the `default` of earlier versions): no claims
    default = "default"  # the smallest budget at which the paper's effects show on a 2-core machine
    paper = "paper"  # the paper's budgets (3 seeds, 1M/2M steps): days on a CPU


class TaskDefinition(Enum):
    """Reward, termination and physics change of the task families (pipeline.envs.DEFINITIONS)."""

    paper = "paper"  # the authors' envs, behind the paper's numbers
    gymnasium_v5 = "gymnasium_v5"  # the stock Gymnasium v5 reward and termination


@dataclass
class Budget:
    """How much work each stage does under one profile."""

    seeds: int = bounded(MISSING, ge=1)  # independent runs for evaluation and meta-training
    max_episode_steps: int = bounded(MISSING, ge=1)  # time limit of every episode (stock: 1000)
    pretrain_steps: int = bounded(MISSING, ge=1)  # env steps of source-policy TD3
    pretrain_start_steps: int = bounded(MISSING, ge=0)  # uniform-random steps before learning
    eval_every: int = bounded(MISSING, ge=1)  # env steps between evaluations
    eval_episodes: int = bounded(MISSING, ge=1)  # episodes per evaluation
    checkpoint_every: int = bounded(MISSING, ge=0)  # env steps between resume states of a training run; 0 = none
    meta_steps: int = bounded(MISSING, ge=1)  # meta-training env steps per seed, summed over training tasks
    meta_start_steps: int = bounded(MISSING, ge=0)  # of which uniform-random at the start
    meta_eval_every: int = bounded(MISSING, ge=1)  # meta-training env steps between evaluations
    meta_eval_episodes: int = bounded(MISSING, ge=1)  # episodes per task and seed at each evaluation
    meta_retrain_every: int = bounded(MISSING, ge=1)  # env steps between C, F, H fits (docs/algorithms/mcat.md: 5000)
    meta_retrain_updates: int = bounded(MISSING, ge=1)  # gradient steps per epoch of each of those fits
    transfer_pretrain_steps: int = bounded(MISSING, ge=1)  # env steps of each transfer task's good policy
    collect_steps: int = bounded(MISSING, ge=1)  # dataset transitions per task (paper: 1e5)
    transfer_epochs: int = bounded(MISSING, ge=1)  # epochs of every F, C and H fit (paper: 30)
    transfer_updates_per_epoch: int = bounded(MISSING, ge=1)  # gradient steps per epoch (paper: 3000)
    transfer_eval_episodes: int = bounded(MISSING, ge=1)  # episodes per policy, pair and seed (paper: 100)


@dataclass
class Budgets:
    smoke: Budget = MISSING
    quick: Budget = MISSING
    default: Budget = MISSING
    paper: Budget = MISSING


@dataclass
class TaskSet:
    """One setting's tasks: values its setting accepts (a physics parameter, a name, a record; pipeline.envs)."""

    source: Any = MISSING  # the task the good source policy is trained on
    train: List[Any] = MISSING  # meta-training tasks
    test: List[Any] = MISSING  # held-out tasks, never trained on


@dataclass
class TransferSet:
    """One setting's fixed-dataset transfer experiment (paper Sec. 5.1)."""

    tasks: List[Any] = MISSING  # tasks of the dataset and of Fig. 5; each gets its own good policy
    pair: List[Any] = MISSING  # Table 1's [source, target], both in `tasks`


@dataclass
class CollectConfig:
    action_noise: float = bounded(0.3, ge=0)  # Gaussian noise std on the good policy's actions (x max action)


@dataclass
class MetaTrainRuns:
    """One DVC stage per (setting, method); each runs the profile's seeds (batched, as the method decides)."""

    settings: List[str] = field(default_factory=lambda: ["halfcheetah-armature"])
    methods: List[str] = field(default_factory=lambda: ["mcat", "mcat_no_pt"])  # registered methods (pipeline.methods)
    # Table 4's other reward delays: stages meta_delay@<delay>-<setting>-<method>, same settings x methods
    # (paper: [200, 350] beside the top-level delay 500); empty: no such stages
    other_delays: List[int] = field(default_factory=list)


@dataclass
class Params:
    """The fixed part of params.yaml; `schema()` adds the blocks of the registered methods (e.g. `meta`, `sil`)."""

    profile: Profile = MISSING  # which of `budgets` every stage uses
    task_definition: TaskDefinition = TaskDefinition.paper  # the envs' reward, termination and physics change
    delay: int = bounded(MISSING, ge=0)  # meta-training reward delay in steps; 0 or 1 = dense
    seed: int = bounded(MISSING, ge=0)  # base seed; run k of a stage uses seed + k
    tasks: Dict[str, TaskSet] = MISSING  # setting name -> tasks; one DVC stage per setting
    td3: TD3Config = field(default_factory=TD3Config)
    transfer: Dict[str, TransferSet] = MISSING  # setting name -> transfer experiment; one DVC stage per setting
    collect: CollectConfig = field(default_factory=CollectConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    forward_model: ForwardModelConfig = field(default_factory=ForwardModelConfig)
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)
    cycle_baseline: CycleTranslatorConfig = field(default_factory=CycleTranslatorConfig)
    meta_train: MetaTrainRuns = field(default_factory=MetaTrainRuns)
    budgets: Budgets = MISSING

    @property
    def budget(self) -> Budget:
        return getattr(self.budgets, self.profile.value)


_SCHEMAS: dict[tuple, type] = {}


def schema() -> type:
    """`Params` with a field per params block of the registered methods (key -> the method's schema dataclass,
    its defaults where params.yaml has no such block)."""
    owned = methods.owned_params()
    key = tuple(owned.items())
    if key not in _SCHEMAS:
        clash = sorted(set(owned) & {f.name for f in dataclasses.fields(Params)})
        if clash:
            raise TypeError(f"method params block(s) {clash} clash with params.yaml's own keys")
        extra = [(name, block, field(default_factory=block)) for name, block in owned.items()]
        made = dataclasses.make_dataclass("Params", extra, bases=(Params,), namespace={"__module__": __name__})
        _SCHEMAS[key] = made
    return _SCHEMAS[key]


def _allowed_keys(dotted_parent: str) -> list[str]:
    """Field names of the schema dataclass at `dotted_parent` ('' = top level)."""
    node: Any = schema()
    for key in filter(None, dotted_parent.split(".")):
        if get_origin(node) is dict:
            node = get_args(node)[1]
        elif dataclasses.is_dataclass(node):
            node = get_type_hints(node).get(key)
        else:
            return []
    if get_origin(node) is dict:
        return list(setting_names()) if dotted_parent in ("tasks", "transfer") else []
    return [f.name for f in dataclasses.fields(node)] if dataclasses.is_dataclass(node) else []


def _omegaconf_message(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None) or "?"
    message = getattr(err, "msg", None) or str(err).splitlines()[0]
    if isinstance(err, ConfigKeyError):
        allowed = _allowed_keys(key.rpartition(".")[0])
        return f"unknown key '{key}'; allowed keys here: {', '.join(allowed)}"
    return f"key '{key}': {message}"


def _task_errors(tasks: dict[str, TaskSet]) -> list[str]:
    errors = []
    for setting, task_set in tasks.items():
        if setting not in setting_names():
            errors.append(f"unknown key 'tasks.{setting}'; allowed settings: {', '.join(setting_names())}")
            continue
        named = [("source", task_set.source)]
        for split in ("train", "test"):
            named += [(f"{split}[{i}]", t) for i, t in enumerate(getattr(task_set, split))]
        for name, task in named:
            try:
                check_task(setting, task)
            except ValueError as err:
                errors.append(f"tasks.{setting}.{name}: {err}")
        for split in ("train", "test"):
            tasks = getattr(task_set, split)
            if not tasks:
                errors.append(f"tasks.{setting}.{split}: needs at least one task")
            elif _repeats(tasks):
                errors.append(f"tasks.{setting}.{split}: {tasks} repeats a task")
        overlap = [t for t in task_set.test if t in task_set.train]
        if overlap:
            errors.append(f"tasks.{setting}.test: {overlap} also in train; test tasks must be held out")
    return errors


def _repeats(tasks: list) -> bool:
    """A task listed twice; by ==, so that a malformed (unhashable) task is reported, not a TypeError."""
    return any(task in tasks[:i] for i, task in enumerate(tasks))


def _transfer_errors(transfer: dict[str, TransferSet]) -> list[str]:
    errors = []
    for setting, spec in transfer.items():
        if setting not in setting_names():
            errors.append(f"unknown key 'transfer.{setting}'; allowed settings: {', '.join(setting_names())}")
            continue
        for i, task in enumerate(spec.tasks):
            try:
                check_task(setting, task)
            except ValueError as err:
                errors.append(f"transfer.{setting}.tasks[{i}]: {err}")
        if len(spec.tasks) < 2 or _repeats(spec.tasks):
            errors.append(f"transfer.{setting}.tasks: needs at least two distinct tasks, got {spec.tasks}")
        if len(spec.pair) != 2 or spec.pair[0] == spec.pair[1] or not all(t in spec.tasks for t in spec.pair):
            expected = "[source, target], two different tasks of 'tasks'"
            errors.append(f"transfer.{setting}.pair: needs {expected}; got {spec.pair}")
    return errors


def _meta_train_errors(runs: MetaTrainRuns, tasks: dict[str, TaskSet], delay: int) -> list[str]:
    errors = [
        f"meta_train.settings[{i}]: {s!r} has no tasks; allowed: {', '.join(tasks)}"
        for i, s in enumerate(runs.settings)
        if s not in tasks
    ]
    registered = methods.method_names()
    errors += [
        f"meta_train.methods[{i}]: unknown method {m!r}; allowed: {', '.join(registered)}"
        for i, m in enumerate(runs.methods)
        if m not in registered
    ]

    def dense_as_0(d: int) -> int:  # delays 0 and 1 both leave the reward dense: one run
        return 0 if d <= 1 else d

    errors += [
        f"meta_train.other_delays[{i}] = {d}: must be >= 0 and not the top-level delay ({delay}), which meta_train runs"
        " (delays 0 and 1 are the same: dense reward)"
        for i, d in enumerate(runs.other_delays)
        if d < 0 or dense_as_0(d) == dense_as_0(delay)
    ]
    if len({dense_as_0(d) for d in runs.other_delays}) != len(runs.other_delays):
        errors.append(f"meta_train.other_delays {runs.other_delays} repeats a delay (0 and 1 are the same)")
    return errors


# (uniform-random start steps, the run they start): a run needs steps that learn after them
RANDOM_START_BEFORE = (
    ("pretrain_start_steps", "pretrain_steps"),
    ("pretrain_start_steps", "transfer_pretrain_steps"),
    ("meta_start_steps", "meta_steps"),
)


def _consistency_errors(params: Params) -> list[str]:
    """Values valid one by one that together would fail deep inside a stage, or quietly change the experiment."""
    errors = []
    lr = params.translator.lr
    if not lr:
        errors.append("translator.lr: needs the learning rate of at least one phase")
    errors += [f"translator.lr[{i}] = {x}: must be > 0 and < 1" for i, x in enumerate(lr) if not 0 < x < 1]
    shares = params.translator.lr_shares
    if len(shares) != len(lr):
        errors.append(f"translator.lr_shares: needs one share per translator.lr phase ({len(lr)}), got {len(shares)}")
    errors += [f"translator.lr_shares[{i}] = {x}: must be > 0" for i, x in enumerate(shares) if not x > 0]
    window = params.context.history + params.forward_model.future_steps
    for profile in dataclasses.fields(Budgets):
        name, budget = profile.name, getattr(params.budgets, profile.name)
        for key in ("max_episode_steps", "collect_steps"):
            if getattr(budget, key) < window:
                errors.append(
                    f"budgets.{name}.{key} = {getattr(budget, key)}: below context.history + forward_model.future_steps"
                    f" = {window}, the steps of one episode that every C and F update reads"
                )
        for start, steps in RANDOM_START_BEFORE:
            if getattr(budget, start) >= getattr(budget, steps):
                errors.append(f"budgets.{name}.{start} must be below {steps}: otherwise no step learns")
    if params.context.contrastive_weight > 0:
        errors += [
            f"tasks.{s}.train: meta-training's contrastive loss (context.contrastive_weight > 0) needs 2+ tasks"
            for s in params.meta_train.settings
            if s in params.tasks and len(params.tasks[s].train) < 2
        ]
    return errors


def validate(raw: Any, origin: str = "params") -> Params:
    """Merge `raw` (a mapping or DictConfig) into the schema and check every range."""
    structured = OmegaConf.structured(schema())
    try:
        merged = OmegaConf.merge(structured, raw)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ParamsError(f"{origin}: missing key(s): {', '.join(missing)}")
        params: Params = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ParamsError(f"{origin}: {_omegaconf_message(err)}") from None
    errors = range_errors(params) + _task_errors(params.tasks) + _transfer_errors(params.transfer)
    errors += _meta_train_errors(params.meta_train, params.tasks, params.delay) + _consistency_errors(params)
    if errors:
        raise ParamsError(f"{origin}: " + "; ".join(errors))
    return params


def load_params(path: str | Path) -> Params:
    """Read and validate a params.yaml."""
    path = Path(path)
    try:
        raw = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        raise ParamsError(f"{path}: cannot parse: {err}") from None
    return validate(raw, str(path))


__all__ = [
    "Budget",
    "CollectConfig",
    "MetaTrainRuns",
    "Params",
    "ParamsError",
    "Profile",
    "TaskDefinition",
    "TaskSet",
    "TransferSet",
    "load_params",
    "schema",
    "validate",
]
