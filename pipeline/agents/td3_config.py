"""TD3 hyperparameters (Fujimoto et al. 2018; defaults of sfujim/TD3) and speed options."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pipeline.schema import bounded


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"  # matmuls under bf16 autocast; weights, optimizer state and losses stay fp32


@dataclass
class TD3Config:
    hidden: int = bounded(256, ge=1)  # width of both hidden layers of actor and critics
    lr: float = bounded(3e-4, gt=0, lt=1)  # Adam learning rate, actor and critics
    batch_size: int = bounded(256, ge=1)  # transitions per update (per seed)
    discount: float = bounded(0.99, ge=0, le=1)  # gamma
    tau: float = bounded(0.005, gt=0, le=1)  # Polyak rate of the target networks
    policy_noise: float = bounded(0.2, ge=0)  # std of target-policy smoothing noise (x max action)
    noise_clip: float = bounded(0.5, ge=0)  # clip of that noise (x max action)
    policy_freq: int = bounded(2, ge=1)  # critic updates per actor and target update
    expl_noise: float = bounded(0.1, ge=0)  # std of Gaussian exploration noise (x max action)
    precision: Precision = Precision.fp32  # bf16: faster with AVX-512 BF16 / AMX, 30-40x slower without (emulated)
    compile: bool = False  # torch.compile the update's gradient computation (~17 s to compile cold, ~3 s warm)
    # hand-written backward + fused Adam step (+ CUDA graphs with TD3(cuda_graph=True)): the plain update (autograd,
    # torch.optim) to float rounding, faster; the code is in pipeline/agents/fast. false: the plain update
    fast: bool = True
