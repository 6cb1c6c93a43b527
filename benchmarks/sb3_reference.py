"""Stable-Baselines3's TD3 and SAC configured as our TD3Config and SACConfig: the benchmarks' independent reference."""

from __future__ import annotations

from typing import Any

import gymnasium

from pipeline.agents.sac_config import SACConfig
from pipeline.agents.td3_config import TD3Config


def sb3_td3(config: TD3Config, env: gymnasium.Env, *, buffer_size: int, seed: int, **kwargs: Any) -> Any:
    """SB3 TD3 with our nets (hidden x hidden), lr, batch, γ, τ, policy delay and target noise.

    `kwargs` go to SB3 as they are (e.g. learning_starts, action_noise). SB3 is a bench-only
    extra, imported here so that the library never needs it.
    """
    from stable_baselines3 import TD3 as SB3TD3

    return SB3TD3(
        "MlpPolicy",
        env,
        learning_rate=config.lr,
        buffer_size=buffer_size,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.discount,
        policy_delay=config.policy_freq,
        target_policy_noise=config.policy_noise,
        target_noise_clip=config.noise_clip,
        policy_kwargs={"net_arch": [config.hidden, config.hidden]},
        seed=seed,
        device="cpu",
        **kwargs,
    )


def sb3_sac(config: SACConfig, env: gymnasium.Env, *, buffer_size: int, seed: int, **kwargs: Any) -> Any:
    """SB3 SAC with our nets (`layers` x `hidden`), lr, batch, γ, τ and temperature (learned from init_alpha
    towards -target_entropy_scale x action_dim, or fixed). `kwargs` go to SB3 as they are."""
    from stable_baselines3 import SAC as SB3SAC

    ent_coef = f"auto_{config.init_alpha}" if config.learn_alpha else config.init_alpha
    return SB3SAC(
        "MlpPolicy",
        env,
        learning_rate=config.lr,
        buffer_size=buffer_size,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.discount,
        ent_coef=ent_coef,
        target_entropy=-config.target_entropy_scale * env.action_space.shape[0],
        policy_kwargs={"net_arch": [config.hidden] * config.layers},
        seed=seed,
        device="cpu",
        **kwargs,
    )
