"""PEARL's params block `pearl` (Rakelly et al. 2019). Defaults from the reference code (katerakelly/oyster,
`configs/default.py` and `configs/hopper_rand_params.json`) where it has one; the rest are this harness's
choices, each said where declared and in docs/algorithms/pearl.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.agents.sac_config import SACConfig
from pipeline.schema import bounded


def _reference_sac() -> SACConfig:
    """oyster's networks: 3 hidden layers of 300 units (net_size 300), batch 256 per task."""
    return SACConfig(hidden=300, layers=3)


@dataclass
class PEARLConfig:
    latent_dim: int = bounded(5, ge=1)  # size of z (oyster: latent_size 5)
    encoder_hidden: int = bounded(200, ge=1)  # width of the context encoder's hidden layers (oyster: 200)
    encoder_layers: int = bounded(3, ge=1)  # its hidden layers (oyster: 3)
    encoder_lr: float = bounded(3e-4, gt=0, lt=1)  # Adam learning rate of the encoder (oyster: context_lr)
    kl_weight: float = bounded(0.1, ge=0)  # weight of KL(q(z|c) || N(0, I)) in the encoder's loss (kl_lambda)
    reward_scale: float = bounded(5.0, gt=0)  # rewards x this in the critics' target (oyster: reward_scale 5)
    use_next_obs: bool = True  # a context transition is (s, a, r, s') rather than (s, a, r) (hopper config: true)
    context_batch: int = bounded(100, ge=1)  # transitions per task in a context (embedding_batch_size 100)
    # the most recent transitions of prior-z episodes kept per task for contexts (oyster keeps the last
    # collection round's in its encoder buffer); 1000 = one episode of the default horizon
    encoder_capacity: int = bounded(1000, ge=1)
    replay_capacity: int = bounded(1_000_000, ge=1)  # transitions kept per (seed, task) for the critics and actor
    # gradient steps per env step; each sees every training task (batch_size rows and a context each). oyster
    # takes 2000 steps per round of 5 tasks x 800-1000 env steps (0.4-0.5)
    updates_per_env_step: float = bounded(0.5, gt=0)
    exploration_episodes: int = bounded(2, ge=1)  # test time: episodes that gather context before the scored one
    sac: SACConfig = field(default_factory=_reference_sac)  # the SAC under PEARL (pipeline/agents/sac_config.py)
