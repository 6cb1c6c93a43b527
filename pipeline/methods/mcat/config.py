"""MCAT's params block `meta`: the loop's own knobs (TD3's, SIL's and the models' are in their own blocks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.schema import bounded


@dataclass
class TransferRuleConfig:
    window: int = bounded(10, ge=1)  # recent episodes kept per (task, acting policy)
    max_age_per_task: int = bounded(5000, ge=1)  # forget returns older than this x number of tasks env steps
    margin: float = bounded(0.5, ge=0)  # a source must beat the target's mean by margin x |target mean|
    # a tried transferred policy is followed when its recent mean beats the learned one's by this x |learned
    # mean|: the paper's "higher" is 0; the authors' development code uses `margin` (0.5) here too
    follow_margin: float = bounded(0.0, ge=0)
    # trials (a source's first episodes on a target, the self-transfer) act with exploration noise; the
    # authors' code tries deterministically (false), which measures the transferred policy itself
    trial_noise: bool = False


@dataclass
class MetaConfig:
    """The loop's knobs; TD3's, SIL's and the models' are in their own sections, lengths in the budgets."""

    retrain_epochs: int = bounded(1, ge=1)  # epochs of each fit of C, F (and H) on the replay
    replay_capacity: int = bounded(1_000_000, ge=1)  # transitions kept per (seed, task)
    # the stage trains the profile's seeds as one seed-batched model (fast); false: one seed after
    # another (1/K of the memory). Seed k draws the same random streams either way.
    batch_seeds: bool = True
    transfer: TransferRuleConfig = field(default_factory=TransferRuleConfig)
