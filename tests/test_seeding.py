import numpy as np
import pytest
import torch

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.data.replay import ReplayBuffer
from pipeline.methods.mcat.sil import SILBuffer
from pipeline.methods.mcat.task_replay import TaskReplay
from pipeline.seeding import stream_generator, stream_seed

NAMES = ("td3.init", "td3.target_noise", "replay", "task_replay", "sil", "meta.fits", "meta.models")


def test_stream_seed_is_deterministic_and_63_bit():
    assert stream_seed(3, "replay") == stream_seed(3, "replay")
    assert all(0 <= stream_seed(s, name) < 2**63 for s in range(20) for name in NAMES)


def test_streams_differ_across_seeds_and_names():
    seeds = {stream_seed(s, name) for s in range(200) for name in NAMES}
    assert len(seeds) == 200 * len(NAMES)


def test_stream_generator_draws_as_its_seed_says():
    expected = torch.Generator().manual_seed(stream_seed(5, "replay"))
    drawn = torch.rand(8, generator=stream_generator(5, "replay"))
    torch.testing.assert_close(drawn, torch.rand(8, generator=expected))


def test_negative_seed_fails_naming_it():
    with pytest.raises(ValueError, match="seed"):
        stream_seed(-1, "replay")


def test_no_two_generators_of_a_batched_run_share_a_stream():
    """Before named streams, seed 0's target noise (seed + 1) replayed seed 1's replay sampling (seed + 1)."""
    k = 3
    agent = TD3(4, 2, -np.ones(2), np.ones(2), TD3Config(hidden=8), seed=0, n_seeds=k)
    generators = [
        *agent.generators,
        *ReplayBuffer(4, 2, 10, seed=0, n_seeds=k).generators,
        *TaskReplay(4, 2, 2, 10, 3, seed=0, n_seeds=k).generators,
        *SILBuffer(4, 2, 10, seed=0, n_seeds=k).generators,
    ]
    first_draws = {tuple(torch.rand(4, generator=g).tolist()) for g in generators}
    assert len(first_draws) == len(generators)


def test_seed_k_of_a_batched_agent_initialises_like_a_single_seed_run():
    batched = TD3(4, 2, -np.ones(2), np.ones(2), TD3Config(hidden=8), seed=10, n_seeds=3)
    single = TD3(4, 2, -np.ones(2), np.ones(2), TD3Config(hidden=8), seed=12)
    torch.testing.assert_close(batched.actor.mlp.weights[0][2], single.actor.mlp.weights[0][0])
    torch.testing.assert_close(batched.generators[2].get_state(), single.generators[0].get_state())
