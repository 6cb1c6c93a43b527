"""Hyperparameters of the context encoder, forward model and action translator (docs/algorithms/translator.md).

Defaults follow the authors' code (guoyijie/MCAT, guoyijie/Cycle_Dynamics) where the paper is silent.
List fields are not range-checked by `pipeline.schema.range_errors`; the modules reject bad sizes.
How long each fit runs (epochs x updates) is a budget of the profile (pipeline.config.Budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List

from pipeline.schema import bounded


class TranslatorLoss(Enum):
    """H's objective through the frozen target F. Neither lets H lower the loss by moving to actions where
    F is unsure: read literally, eq. 3 with F's action-dependent variance does (docs/algorithms/translator.md)."""

    mean_l1 = "mean_l1"  # the authors' code, behind the paper's numbers: |mean of F - Δs_src| on normalized Δs
    nll = "nll"  # eq. 3, -log F(Δs_src | s, H(s, a_src, z_src, z_tgt), z_tgt), F's variance held fixed for H


@dataclass
class ContextConfig:
    history: int = bounded(10, ge=1)  # K: past (Δs, a) pairs per segment
    z_dim: int = bounded(10, ge=1)  # size of the context embedding z
    hidden: List[int] = field(default_factory=lambda: [256, 128, 64])  # encoder MLP hidden widths (ReLU)
    lr: float = bounded(3e-4, gt=0, lt=1)  # Adam learning rate of the encoder (trained jointly with F)
    margin: float = bounded(1.0, gt=0)  # contrastive margin m of eq. 2
    contrastive_weight: float = bounded(1.0, ge=0)  # weight of L_cont next to L_forw; 0 disables it
    feature_segments: int = bounded(1024, ge=1)  # segments averaged into a task feature z(i)


@dataclass
class ForwardModelConfig:
    hidden: int = bounded(200, ge=1)  # width of every hidden layer (swish)
    layers: int = bounded(4, ge=1)  # hidden layers
    future_steps: int = bounded(10, ge=1)  # M: one-step predictions t..t+M-1 from the same z
    lr: float = bounded(3e-4, gt=0, lt=1)  # Adam learning rate of F
    weight_decay: float = bounded(5e-5, ge=0)  # the L2 term, as Adam weight decay on F
    batch_size: int = bounded(256, ge=1)  # transitions per task per update: batch_size // future_steps windows
    max_logvar: float = 0.5  # initial upper log-variance bound (learned)
    min_logvar: float = -10.0  # initial lower log-variance bound (learned)
    logvar_bound_weight: float = bounded(0.01, ge=0)  # penalty on (max_logvar - min_logvar), summed over dims


@dataclass
class TranslatorConfig:
    embed: int = bounded(128, ge=1)  # width of the ReLU layer each input (s, a, z_src, z_tgt) goes through
    hidden: int = bounded(256, ge=1)  # width of the hidden layers after the concatenation
    layers: int = bounded(2, ge=1)  # hidden layers after the concatenation
    loss: TranslatorLoss = TranslatorLoss.mean_l1  # training objective; see TranslatorLoss
    lr: List[float] = field(default_factory=lambda: [3e-4, 5e-5, 1e-5])  # Adam lr per phase (the authors')
    lr_shares: List[float] = field(default_factory=lambda: [1.0, 2.0, 3.0])  # phases' epoch shares: 1/6, 1/3, 1/2
    batch_size: int = bounded(256, ge=1)  # source transitions per update
    heldout_share: float = bounded(0.1, ge=0, lt=1)  # train_translator: share of each task's episodes held out


@dataclass
class CycleTranslatorConfig:
    """The Table 1 baseline of Zhang et al. 2020c. "Their code": sjtuzq/Cycle_Dynamics
    cross_physics/cycle_transfer/forwardexp.py and the MCAT authors' fork guoyijie/Cycle_Dynamics
    cross_physics/td3_transfer_context/cycle_transfer.py, which share the loss weights and the D."""

    adversarial_weight: float = bounded(1.0, ge=0)  # LSGAN generator loss on H's actions; their code: 1
    domain_cycle_weight: float = bounded(1.0, ge=0)  # L1 back-translation, per direction; their code: 1 (one direction)
    dynamics_cycle_weight: float = bounded(20.0, ge=0)  # L1, F's mean vs the source Δs; their code: 20 (on raw states)
    disc_hidden: int = bounded(256, ge=1)  # D's first hidden width; their D: 256-64 ReLU (second = disc_hidden // 4)
    lr: float = bounded(3e-4, gt=0, lt=1)  # Adam lr of (H, H_inv) and of D; the fork and MCAT cycle_transfer_action.py
    batch_size: int = bounded(256, ge=1)  # MCAT cycle_transfer_action.py (as TranslatorConfig); sjtuzq 32, fork 1024
