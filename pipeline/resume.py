"""Resume state of a TD3 training run: everything needed to continue it bitwise after a kill.

A resume folder holds `agent.pt` (weights, target nets, optimizers, generators, update count:
tensors only, loaded with `weights_only=True`), `replay.npz` (the replay buffer's filled rows,
write position and sampling generators), `loop.npz` (current observations, each env's physics)
and `loop.json` (step, evaluation curves so far, numpy generator states, the envs' other state,
and a fingerprint of the run's configuration). Nothing is pickled. The folder is written beside
its final place and renamed onto it, so a kill leaves the previous complete state or the new one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium
import numpy as np
import torch

from pipeline.agents.td3 import TD3
from pipeline.atomic import atomic_folder, recover_folder
from pipeline.data.replay import ReplayBuffer
from pipeline.envs.state import get_env_states, set_env_states

RESUME_VERSION = 1


class LoopState(NamedTuple):
    step: int  # env steps done (per env)
    obs: np.ndarray  # [K, obs_dim] the observations the next step acts on
    curves: list[list[list[float]]]  # per seed, the evaluation points so far (env_steps, mean, stderr)


def save_resume_state(
    folder: Path,
    *,
    fingerprint: str,
    agent: TD3,
    buffer: ReplayBuffer,
    rngs: Sequence[np.random.Generator],
    envs: Sequence[gymnasium.Env],
    loop: LoopState,
) -> None:
    with atomic_folder(folder) as tmp:
        torch.save(agent.state_dict(), tmp / "agent.pt")
        np.savez(tmp / "replay.npz", **buffer.state_arrays())
        env_states, env_arrays = get_env_states(envs)
        np.savez(tmp / "loop.npz", obs=loop.obs, **env_arrays)
        meta = {
            "version": RESUME_VERSION,
            "fingerprint": fingerprint,
            "step": loop.step,
            "curves": loop.curves,
            "rngs": [rng.bit_generator.state for rng in rngs],
            "envs": env_states,
        }
        (tmp / "loop.json").write_text(json.dumps(meta))


def load_resume_state(
    folder: Path,
    *,
    fingerprint: str,
    agent: TD3,
    buffer: ReplayBuffer,
    rngs: Sequence[np.random.Generator],
    envs: Sequence[gymnasium.Env],
) -> LoopState | None:
    """Restore a state saved by `save_resume_state` into freshly built objects and return the loop's part;
    None when there is no complete state or it belongs to another configuration (then nothing is changed)."""
    folder = Path(folder)
    recover_folder(folder)
    if not (folder / "loop.json").is_file():
        return None
    meta: dict[str, Any] = json.loads((folder / "loop.json").read_text())
    if meta.get("version") != RESUME_VERSION or meta.get("fingerprint") != fingerprint:
        return None
    if len(meta["rngs"]) != len(rngs) or len(meta["envs"]) != len(envs):
        raise ValueError(f"{folder}: resume state has {len(meta['envs'])} envs, this run {len(envs)}")
    agent.load(folder / "agent.pt")
    with np.load(folder / "replay.npz") as replay:
        buffer.load_state_arrays(dict(replay))
    with np.load(folder / "loop.npz") as arrays:
        loop = dict(arrays)
    for rng, state in zip(rngs, meta["rngs"], strict=True):
        rng.bit_generator.state = state
    set_env_states(envs, meta["envs"], loop)
    return LoopState(int(meta["step"]), loop["obs"], meta["curves"])
