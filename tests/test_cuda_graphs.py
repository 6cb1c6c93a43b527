"""TD3 updates replayed as CUDA graphs do what eager updates do (GPU only, but the CPU check below)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.agents.fast.cuda_graphs import WARMUP_UPDATES
from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import Precision, TD3Config
from pipeline.data.replay import Batch, ReplayBuffer

OBS, ACT, CTX, BATCH = 5, 2, 3, 16
CONFIG = TD3Config(hidden=32, batch_size=BATCH)
UPDATES = 4 * WARMUP_UPDATES  # warm-up and capture of both kinds of update, then replays
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def make_agent(config: TD3Config = CONFIG, *, n_seeds: int = 1, context_dim: int = 0, graph: bool = False) -> TD3:
    low, high = -np.ones(ACT), 2 * np.ones(ACT)
    return TD3(OBS, ACT, low, high, config, context_dim=context_dim, n_seeds=n_seeds, device="cuda", cuda_graph=graph)


def batches(n_seeds: int, context_dim: int, count: int, seed: int = 0) -> list[Batch]:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(OBS, ACT, capacity=200, seed=seed, n_seeds=n_seeds, device="cuda")
    for _ in range(200):
        buffer.add(rng.normal(size=(n_seeds, OBS)), rng.uniform(-1, 2, (n_seeds, ACT)), rng.normal(size=n_seeds),
                   rng.normal(size=(n_seeds, OBS)), rng.random(n_seeds) < 0.1)  # fmt: skip
    out = []
    for _ in range(count):
        batch = buffer.sample(BATCH)
        if context_dim:
            context, next_context = torch.randn(2, n_seeds, BATCH, context_dim, device="cuda")
            batch = batch._replace(context=context, next_context=next_context)
        out.append(batch)
    return out


def parameters(agent: TD3) -> list[torch.Tensor]:
    return [p.detach().clone() for _, p in agent.named_parameters()]


def test_cuda_graph_needs_a_cuda_device() -> None:
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        TD3(OBS, ACT, -np.ones(ACT), np.ones(ACT), CONFIG, device="cpu", cuda_graph=True)


def test_cuda_graph_needs_the_fast_update() -> None:
    plain = dataclasses.replace(CONFIG, fast=False)
    with pytest.raises(ValueError, match=r"cuda_graph=True needs td3\.fast"):
        TD3(OBS, ACT, -np.ones(ACT), np.ones(ACT), plain, device="cpu", cuda_graph=True)


@cuda
@pytest.mark.parametrize(("precision", "n_seeds", "context_dim"), [("fp32", 1, 0), ("fp32", 3, CTX), ("bf16", 2, 0)])
def test_graph_updates_are_eager_updates(precision: str, n_seeds: int, context_dim: int) -> None:
    config = dataclasses.replace(CONFIG, precision=Precision(precision))
    eager = make_agent(config, n_seeds=n_seeds, context_dim=context_dim)
    graphed = make_agent(config, n_seeds=n_seeds, context_dim=context_dim, graph=True)
    for batch in batches(n_seeds, context_dim, UPDATES):
        eager.train(batch)
        graphed.train(batch)
        assert graphed.last_losses.keys() == eager.last_losses.keys()
        for name, loss in eager.last_losses.items():
            torch.testing.assert_close(graphed.last_losses[name], loss, rtol=1e-6, atol=1e-7)
    for mine, theirs in zip(parameters(graphed), parameters(eager), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
    assert graphed._fast is not None and len(graphed._fast._graphs._captured) == 2  # both kinds replayed


@cuda
def test_graph_agent_continues_after_loading_a_checkpoint() -> None:
    """load_state_dict replaces the optimizers' state tensors: the graphs must be captured anew."""
    first, second = batches(1, 0, UPDATES), batches(1, 0, UPDATES, seed=1)
    graphed, eager = make_agent(graph=True), make_agent()
    for batch in first:
        graphed.train(batch)
    eager.load_state_dict(graphed.state_dict())
    graphed.load_state_dict(eager.state_dict())
    assert graphed._fast is not None and not graphed._fast._graphs._captured
    for batch in second:
        graphed.train(batch)
        eager.train(batch)
    assert len(graphed._fast._graphs._captured) == 2
    for mine, theirs in zip(parameters(graphed), parameters(eager), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)


@cuda
def test_a_cuda_agent_round_trips_through_a_checkpoint_file(tmp_path) -> None:
    """load maps the checkpoint onto the agent's device; the generators' states must still reach them on the CPU."""
    agent, loaded = make_agent(n_seeds=2), make_agent(n_seeds=2)
    for batch in batches(2, 0, 3):
        agent.train(batch)
    agent.save(tmp_path / "td3.pt")
    loaded.load(tmp_path / "td3.pt")
    for mine, theirs in zip(parameters(loaded), parameters(agent), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    batch = batches(2, 0, 1, seed=5)[0]
    agent.train(batch)
    loaded.train(batch)  # same target-noise draws from the restored generators
    for mine, theirs in zip(parameters(loaded), parameters(agent), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


@cuda
def test_graph_rejects_a_batch_of_another_shape() -> None:
    agent = make_agent(graph=True)
    agent.train(batches(1, 0, 1)[0])
    smaller = batches(1, 0, 1)[0]
    smaller = Batch(*(t[:, : BATCH // 2] if isinstance(t, torch.Tensor) else t for t in smaller))
    with pytest.raises(ValueError, match=r"read state of shape \[1, 16, 5\], got \[1, 8, 5\]"):
        agent.train(smaller)
