"""TD3 training loop on one task, for K seeds at once (one env per seed, stepped in lockstep), resumable.

Its resume state (one generation of a `pipeline.resume.ResumeFolder`): `agent.pt` (weights, target nets,
optimizers, generators, update count: tensors only, loaded with `weights_only=True`), `replay.npz` (the
replay buffer's filled rows, write position and sampling generators), `loop.npz` (current observations,
each env's physics) and `loop.json` (step, evaluation curves so far, numpy generator states, the envs'
other state). Nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium
import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.agents.td3 import TD3
from pipeline.data.replay import ReplayBuffer
from pipeline.envs.state import get_env_states, set_env_states
from pipeline.evaluation import evaluate_policies
from pipeline.guards import NonFiniteError
from pipeline.resume import ResumeFolder
from pipeline.seeding import stream_seed

__all__ = ["EvalPoint", "LoopState", "NonFiniteError", "evaluation_seed", "train_td3"]


class EvalPoint(NamedTuple):
    env_steps: int
    mean_return: float
    stderr: float


class LoopState(NamedTuple):
    step: int  # env steps done (per env)
    obs: np.ndarray  # [K, obs_dim] the observations the next step acts on
    curves: list[list[list[float]]]  # per seed, the evaluation points so far (env_steps, mean, stderr)


def save_loop_state(
    folder: Path,
    *,
    agent: TD3,
    buffer: ReplayBuffer,
    rngs: Sequence[np.random.Generator],
    envs: Sequence[gymnasium.Env],
    loop: LoopState,
) -> None:
    """Write the training run's complete state into the empty `folder`."""
    torch.save(agent.state_dict(), folder / "agent.pt")
    np.savez(folder / "replay.npz", **buffer.state_arrays())
    env_states, env_arrays = get_env_states(envs)
    np.savez(folder / "loop.npz", obs=loop.obs, **env_arrays)
    meta = {
        "step": loop.step,
        "curves": loop.curves,
        "rngs": [rng.bit_generator.state for rng in rngs],
        "envs": env_states,
    }
    (folder / "loop.json").write_text(json.dumps(meta))


def load_loop_state(
    folder: Path,
    *,
    agent: TD3,
    buffer: ReplayBuffer,
    rngs: Sequence[np.random.Generator],
    envs: Sequence[gymnasium.Env],
) -> LoopState:
    """Restore a state written by `save_loop_state` into freshly built objects; returns the loop's part."""
    meta: dict[str, Any] = json.loads((folder / "loop.json").read_text())
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


def evaluation_seed(seed: int) -> int:
    """The first evaluation reset seed of run seed `seed` (episode e resets with this + e): a named stream,
    so no evaluation reuses a training reset and seed k's episodes do not overlap seed k + 1's."""
    return stream_seed(seed, "evaluation")


def train_td3(
    agent: TD3,
    envs: Sequence[gymnasium.Env],
    eval_envs: Sequence[gymnasium.Env],
    *,
    steps: int,
    start_steps: int,
    eval_every: int,
    eval_episodes: int,
    seed: int,
    progress: bool = True,
    on_eval: Callable[[list[list[EvalPoint]]], None] | None = None,
    resume: ResumeFolder | None = None,
    checkpoint_every: int = 0,
) -> list[list[EvalPoint]]:
    """Train the K seeds of `agent` for `steps` env steps each; return one eval curve per seed.

    Seed k runs on `envs[k]` with seed `seed + k` (its resets; its random actions, exploration
    noise and evaluation resets from streams named after it), so seed k of a K-seed run is the
    1-seed run with seed `seed + k`.
    The first `start_steps` actions are uniform random; after that each seed acts with
    Gaussian noise (`expl_noise` x max action) and every env step is one update of every
    seed. Evaluation at step 0, every `eval_every` steps and at the end; `on_eval` receives
    the K curves so far.

    With `resume` (an open ResumeFolder), the complete run state is saved there every
    `checkpoint_every` steps, and an intact state of the same configuration found there is
    continued from: the result is bitwise the uninterrupted run's. Removing the folder once the
    run's outputs are safe is the caller's job. A non-finite observation, loss or (at checkpoints)
    parameter raises NonFiniteError before anything more is saved.
    """
    k = agent.n_seeds
    if len(envs) != k or len(eval_envs) != k:
        raise ValueError(f"agent has {k} seeds but got {len(envs)} envs and {len(eval_envs)} eval envs")
    seeds = [seed + i for i in range(k)]
    low, high = envs[0].action_space.low, envs[0].action_space.high
    buffer = ReplayBuffer(
        agent.obs_dim, agent.action_dim, capacity=max(steps, 1), seed=seed, n_seeds=k, device=str(agent.device)
    )
    # named streams: seeding noise and random actions with `s` itself would replay the env's reset noise
    rngs = [np.random.default_rng(stream_seed(s, "exploration")) for s in seeds]
    for env, s in zip(envs, seeds, strict=True):
        env.action_space.seed(stream_seed(s, "random_actions"))
    eval_seeds = [evaluation_seed(s) for s in seeds]
    noise_std = agent.config.expl_noise * (high - low) / 2
    curves: list[list[EvalPoint]] = [[] for _ in range(k)]

    def evaluate(step: int) -> None:
        stats = evaluate_policies(agent.select_action, eval_envs, eval_episodes, eval_seeds)
        for curve, st in zip(curves, stats, strict=True):
            curve.append(EvalPoint(step, st.mean, st.stderr))
        if on_eval is not None:
            on_eval(curves)

    def fail(quantity: str, step: int) -> NonFiniteError:
        kept = f"last good resume state: {resume.folder} (kept)" if resume else "no resume state (checkpointing off)"
        return NonFiniteError(f"non-finite {quantity} at env step {step}; {kept}")

    state = None
    if resume is not None:
        state = resume.load(lambda folder: load_loop_state(folder, agent=agent, buffer=buffer, rngs=rngs, envs=envs))
    if state is None:
        evaluate(0)
        obs, first = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]), 1
    else:
        obs, first = state.obs, state.step + 1
        curves[:] = [[EvalPoint(int(s), m, e) for s, m, e in curve] for curve in state.curves]
        if on_eval is not None:
            on_eval(curves)
    bar = tqdm(total=steps, initial=first - 1, disable=not progress, unit="step", dynamic_ncols=True, mininterval=1.0)
    for step in range(first, steps + 1):
        if step <= start_steps:
            actions = np.stack([env.action_space.sample() for env in envs])
        else:
            noise = np.stack([rng.normal(0.0, noise_std) for rng in rngs]).astype(np.float32)
            actions = np.clip(agent.select_action(obs) + noise, low, high)
        next_obs, rewards, terminated = np.empty_like(obs), np.empty(k), np.empty(k, dtype=bool)
        following = np.empty_like(obs)  # next_obs, or the first obs of a new episode
        for i, env in enumerate(envs):
            next_obs[i], rewards[i], terminated[i], truncated, _ = env.step(actions[i])
            following[i] = env.reset()[0] if terminated[i] or truncated else next_obs[i]
        if not (np.isfinite(next_obs).all() and np.isfinite(rewards).all()):
            raise fail("observation or reward", step)
        buffer.add(obs, actions, rewards, next_obs, terminated)
        obs = following
        if step > start_steps:
            agent.train(buffer.sample(agent.config.batch_size))
            for name, loss in agent.last_losses.items():
                if not torch.isfinite(loss).all():
                    raise fail(f"{name} loss", step)
        if step % eval_every == 0 or step == steps:
            evaluate(step)
            bar.set_postfix(ret=" ".join(f"{c[-1].mean_return:.0f}" for c in curves))
        if resume is not None and checkpoint_every > 0 and step % checkpoint_every == 0 and step < steps:
            for name, param in agent.named_parameters():
                if not torch.isfinite(param).all():
                    raise fail(f"parameter {name}", step)
            loop = LoopState(step, obs, [[list(p) for p in curve] for curve in curves])
            resume.save(
                lambda folder, loop=loop: save_loop_state(
                    folder, agent=agent, buffer=buffer, rngs=rngs, envs=envs, loop=loop
                ),
                position=step,
            )
        if resume is not None:
            resume.progress(step)
        bar.update(1)
    bar.close()
    return curves
