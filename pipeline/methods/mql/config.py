"""MQL's params block `mql` (Fakoor et al. 2020). Defaults from the reference code (amazon-research/meta-q-learning,
`main.py`'s arguments) where it has one; the rest are this harness's choices, said where declared and in
docs/algorithms/mql.md."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.schema import bounded


@dataclass
class MQLConfig:
    history: int = bounded(30, ge=1)  # past (action, reward, next observation) steps the context reads
    context_hidden: int = bounded(30, ge=1)  # the GRU's hidden size, the context's size (hiddens_conext)
    hidden: int = bounded(300, ge=1)  # width of both hidden layers of actor and critics (hidden_sizes 300 300)
    lr: float = bounded(3e-4, gt=0, lt=1)  # Adam learning rate, actor and critics
    batch_size: int = bounded(256, ge=1)  # transitions per update, drawn uniformly over the training tasks
    discount: float = bounded(0.99, ge=0, le=1)  # gamma
    tau: float = bounded(0.005, gt=0, le=1)  # Polyak rate of the target networks (ptau)
    policy_noise: float = bounded(0.3, ge=0)  # std of target-policy smoothing noise, x max action
    noise_clip: float = bounded(0.5, ge=0)  # clip of that noise, x max action
    policy_freq: int = bounded(2, ge=1)  # critic updates per actor and target update
    expl_noise: float = bounded(0.2, ge=0)  # std of Gaussian exploration noise, x max action
    replay_capacity: int = bounded(1_000_000, ge=1)  # transitions kept per (seed, task)
    # test-time adaptation (the reference's enable_adaptation); false: the meta-trained policy acts as it is
    adaptation: bool = True
    # episodes the meta-trained policy runs on the evaluated task before adapting (the reference's snapshot_size:
    # 2000 steps, 10 of its 200-step episodes; here one episode of the horizon, 1000 steps at the default)
    snapshot_episodes: int = bounded(1, ge=1)
    snapshot_updates: int = bounded(10, ge=0)  # TD3 updates on the task's snapshot alone (snap_iter_nums)
    # propensity-weighted, proximal updates on the replay (main_snap_iter_nums)
    replay_updates: int = bounded(100, ge=0)
    replay_batch_multiple: int = bounded(5, ge=1)  # those updates' batch: this x batch_size (sample_mult)
    proximal_weight: float = bounded(0.1, ge=0)  # lambda of the proximal term ||theta - theta_meta||^2 (prox_coef)
    beta_clip: float = bounded(1.0, ge=0)  # the classifier's logit is clipped at -beta_clip before exp(-f)
    logistic_c: float = bounded(0.5, gt=0)  # inverse L2 strength of the logistic regression (lam_csc)
