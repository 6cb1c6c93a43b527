"""Resume state of an MCAT run: everything `MetaTrainer` holds, to continue it bitwise after a kill.

Files written into one generation folder of pipeline.resume (which checksums, versions and
fingerprints them): `models.pt` (TD3, every seed's C, F and H, task features and torch generators:
tensors only, loaded with `weights_only=True`), `replay.npz` (the per-task replay), `sil.npz`
(the self-imitation buffer), `loop.npz` (observations, context segments, returns and each env's
physics; the episodes in progress for SIL) and `loop.json` (step, the transfer rule's recent
returns, the acting policy of each running episode, numpy generator states, the envs' other state).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from pipeline.envs.state import get_env_states, set_env_states

if TYPE_CHECKING:
    from pipeline.methods.mcat.loop import MetaTrainer


def _episode_logs(trainer: MetaTrainer) -> dict[str, np.ndarray]:
    """The running episodes' SIL logs, concatenated per field, with each stream's length."""
    logs = [log for row in trainer.episodes for log in row]
    lengths = np.array([len(log) for log in logs])
    fields = {}
    for f, name in enumerate(("log_obs", "log_action", "log_reward", "log_context")):
        rows = [np.asarray(entry[f]) for log in logs for entry in log]  # dtypes kept: rewards are float64
        fields[name] = np.stack(rows) if rows else np.zeros((0,))
    return {"log_lengths": lengths, **fields}


def save_meta_state(folder: Path, trainer: MetaTrainer) -> None:
    """Write the trainer's state into `folder`."""
    tmp = Path(folder)
    torch.save(
        {
            "agent": trainer.agent.state_dict(),
            "models": [{name: m.state_dict() for name, m in seed._asdict().items()} for seed in trainer.models],
            "features": trainer.features,
            "generators": [g.get_state() for g in trainer.generators],
        },
        tmp / "models.pt",
    )
    np.savez(tmp / "replay.npz", **trainer.replay.state_arrays())
    if trainer.sil_buffer is not None:
        np.savez(tmp / "sil.npz", **trainer.sil_buffer.state_arrays())
    streams = trainer.streams
    env_states, env_arrays = get_env_states([env for row in trainer.envs for env in row])
    np.savez(
        tmp / "loop.npz",
        obs=streams.obs,
        segment=streams.segment,
        episode=streams.episode,
        received=streams.received,
        dense=streams.dense,
        sources=trainer.sources,
        kinds=trainer.kinds,
        episode_start=trainer.episode_start,
        **env_arrays,
        **_episode_logs(trainer),
    )
    meta = {
        "step": trainer.step,
        "transferred_episodes": trainer.transferred_episodes,
        "episode_log": trainer.episode_log,
        "translator_ready": trainer.translator_ready.tolist(),
        "histories": [h.to_json() for h in trainer.histories],
        "rngs": [rng.bit_generator.state for rng in trainer.rngs],
        "envs": env_states,
    }
    (tmp / "loop.json").write_text(json.dumps(meta))


def load_meta_state(folder: Path, trainer: MetaTrainer) -> None:
    """Restore a state saved by `save_meta_state` into a freshly built trainer of the same run."""
    folder = Path(folder)
    meta = json.loads((folder / "loop.json").read_text())
    state = torch.load(folder / "models.pt", weights_only=True)
    trainer.agent.load_state_dict(state["agent"])
    for seed, saved in zip(trainer.models, state["models"], strict=True):
        for name, module in seed._asdict().items():
            module.load_state_dict(saved[name])
    trainer.features.copy_(state["features"])
    for g, saved in zip(trainer.generators, state["generators"], strict=True):
        g.set_state(saved)
    with np.load(folder / "replay.npz") as arrays:
        trainer.replay.load_state_arrays(dict(arrays))
    if trainer.sil_buffer is not None:
        with np.load(folder / "sil.npz") as arrays:
            trainer.sil_buffer.load_state_arrays(dict(arrays))
    with np.load(folder / "loop.npz") as arrays:
        loop = dict(arrays)
    streams = trainer.streams
    streams.obs, streams.segment, streams.episode = loop["obs"], loop["segment"], loop["episode"]
    streams.received, streams.dense, trainer.sources = loop["received"], loop["dense"], loop["sources"]
    trainer.kinds = loop["kinds"]
    set_env_states([env for row in trainer.envs for env in row], meta["envs"], loop)
    starts = np.r_[0, np.cumsum(loop["log_lengths"])]
    for n, (k, i) in enumerate(np.ndindex(trainer.n_seeds, trainer.n_tasks)):
        rows = range(starts[n], starts[n + 1])
        trainer.episodes[k][i] = [
            (loop["log_obs"][r], loop["log_action"][r], loop["log_reward"][r], loop["log_context"][r]) for r in rows
        ]
    for history, entries in zip(trainer.histories, meta["histories"], strict=True):
        history.load_json(entries)
    for rng, saved in zip(trainer.rngs, meta["rngs"], strict=True):
        rng.bit_generator.state = saved
    trainer.step, trainer.transferred_episodes = meta["step"], meta["transferred_episodes"]
    trainer.episode_log = [tuple(row) for row in meta["episode_log"]]
    trainer.translator_ready = np.array(meta["translator_ready"], bool)
    trainer.episode_start = loop["episode_start"]
