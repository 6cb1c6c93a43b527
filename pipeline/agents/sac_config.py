"""SAC hyperparameters (Haarnoja et al. 2018, the learned-temperature version; defaults of Stable-Baselines3's SAC)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.schema import bounded


@dataclass
class SACConfig:
    hidden: int = bounded(256, ge=1)  # width of every hidden layer of actor and critics
    layers: int = bounded(2, ge=1)  # hidden layers of actor and critics (PEARL's reference: 3 x 300)
    lr: float = bounded(3e-4, gt=0, lt=1)  # Adam learning rate of actor, critics and temperature
    batch_size: int = bounded(256, ge=1)  # transitions per update (per seed)
    discount: float = bounded(0.99, ge=0, le=1)  # gamma
    tau: float = bounded(0.005, gt=0, le=1)  # Polyak rate of the target critics (SAC has no target actor)
    init_alpha: float = bounded(1.0, gt=0)  # the temperature's start (SB3's ent_coef "auto" starts at 1.0)
    learn_alpha: bool = True  # learn the temperature towards `target_entropy`; false: alpha stays init_alpha
    # target entropy = -target_entropy_scale x action_dim (SB3 and the SAC paper: -action_dim)
    target_entropy_scale: float = bounded(1.0, ge=0)
    log_std_min: float = -20.0  # clamp of the policy's log standard deviation (SB3's LOG_STD_MIN)
    log_std_max: float = 2.0  # ... and its upper end (SB3's LOG_STD_MAX)
