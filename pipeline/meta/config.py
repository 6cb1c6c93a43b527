"""Meta-training's params: which (setting, method) runs exist, and the loop's own knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from pipeline.schema import bounded

# The `method` key: each name is a loop in pipeline.meta (the three MCAT variants share mcat.py).
METHOD_NAMES = ("mcat", "mcat_no_pt", "mcat_no_sil")


@dataclass
class TransferRuleConfig:
    window: int = bounded(10, ge=1)  # recent episodes kept per (task, acting policy)
    max_age_per_task: int = bounded(5000, ge=1)  # forget returns older than this x number of tasks env steps
    margin: float = bounded(0.5, ge=0)  # a source must beat the target's mean by margin x |target mean|


@dataclass
class MetaConfig:
    """The loop's knobs; TD3's, SIL's and the models' are in their own sections, lengths in the budgets."""

    retrain_epochs: int = bounded(1, ge=1)  # epochs of each fit of C, F (and H) on the replay
    replay_capacity: int = bounded(1_000_000, ge=1)  # transitions kept per (seed, task)
    # the stage trains the profile's seeds as one seed-batched model (fast); false: one seed after
    # another (1/K of the memory). Seed k draws the same random streams either way.
    batch_seeds: bool = True
    transfer: TransferRuleConfig = field(default_factory=TransferRuleConfig)


@dataclass
class MetaTrainRuns:
    """One DVC stage per (setting, method); each runs the profile's seeds batched."""

    settings: List[str] = field(default_factory=lambda: ["halfcheetah-armature"])
    methods: List[str] = field(default_factory=lambda: ["mcat", "mcat_no_pt"])
    # Table 4's other reward delays: stages meta_delay@<delay>-<setting>-<method>, same settings x methods
    # (paper: [200, 350] beside the top-level delay 500); empty: no such stages
    other_delays: List[int] = field(default_factory=list)
