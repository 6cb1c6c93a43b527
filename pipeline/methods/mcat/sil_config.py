"""Self-imitation learning's hyperparameters (Oh et al. 2018; defaults from junhyukoh/self-imitation-learning)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pipeline.schema import bounded


class SILSource(Enum):
    """Which finished episodes the self-imitation buffer keeps."""

    all = "all"  # every episode: SIL as a component of MCAT, so MCAT w/o PT keeps it (paper 5.2, Table 3)
    transferred = "transferred"  # only episodes a transferred policy acted in (the authors' development code)


@dataclass
class SILConfig:
    # transitions kept per seed, oldest overwritten first (authors' `max_steps`, 1e5)
    capacity: int = bounded(100_000, ge=1)
    # transitions per SIL update per seed (a choice: TD3's batch; the authors' default is 512)
    batch_size: int = bounded(256, ge=1)
    # priority exponent of the prioritized buffer (authors' `--sil-alpha`, 0.6)
    alpha: float = bounded(0.6, gt=0)
    # importance-sampling exponent, 0 = no correction (authors' MuJoCo `--sil-beta`, 0.1)
    beta: float = bounded(0.1, ge=0, le=1)
    # sil_value: weight of the critic term (authors' MuJoCo `--sil-value`, 0.01)
    value_weight: float = bounded(0.01, ge=0)
    # weight of the actor (imitation) term (a choice; the authors' policy term has weight 1)
    actor_weight: float = bounded(1.0, ge=0)
    # SIL updates per environment step, spread evenly (0.125: one after every 8th TD3 update); 0 turns SIL
    # off. A choice: 0.125 x 256 = 32 replayed transitions per env step, still 12.8x the authors' rate (10
    # updates of 512 per 2048-step PPO batch), at which MCAT costs <= 1.3x plain TD3 per env step (`make bench`)
    updates_per_step: float = bounded(0.125, ge=0)
    # the episodes SIL learns from: all (default: "imitates the agent's own successful past experiences",
    # paper 5.2) or only transferred ones (the authors' code, where SIL is off by default)
    source: SILSource = SILSource.all
