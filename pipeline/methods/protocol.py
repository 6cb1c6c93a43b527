"""What every meta-RL method implements, so that stage meta_train, resume and the reports need no method's name.

A registered method (`registry.MethodSpec`) names a trainer module (`MethodTrainer`): `build` makes a
`MetaLearner` for some seeds of a run, `finish` writes the run's checkpoints from the trained learners.
Stage meta_train drives the learner: evaluations (curve.csv, metrics.json), resume states (pipeline.resume)
and the outputs' layout are the stage's, the same for every method.

A run: K seeds (params `seed` + k, the profile's `seeds`) x the setting's T training tasks, in loop steps
that each step every training task once; `meta_steps` env steps are `meta_steps // T` loop steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium
import numpy as np

if TYPE_CHECKING:
    from pipeline.config import Params
    from pipeline.methods.registry import MethodSpec

Grid = Sequence[Sequence[gymnasium.Env]]  # envs[k][i]: seed k's env of task i
# episodes.csv, an optional part of a learner (`finished_episodes()`): one row per finished training
# episode: env steps of the run at its end, seed, task index, the acting policy ("learned", or the index of
# the task whose policy was transferred), how it was chosen ("random" start steps, "learned", a transfer
# "trial" or "follow"), its return, and the learned policy's recent mean on that task before it ("" if none)
EPISODE_COLUMNS = ("env_steps", "seed", "task", "policy", "kind", "episode_return", "learned_recent_mean")


@dataclass(frozen=True)
class Run:
    """What a learner is built from: one group of a run's seeds (all of them, unless `seed_groups` splits)."""

    params: Params  # validated params (with --delay applied for a meta_delay stage)
    spec: MethodSpec  # the method (its name, options)
    setting: str
    seeds: list[int]  # the run's seed indices this learner trains, consecutive; seed index s is params.seed + s
    envs: Grid  # envs[k][i]: seed seeds[k]'s env of training task i, rewards delayed by params.delay
    steps: int  # loop steps of the whole run

    @property
    def n_tasks(self) -> int:
        return len(self.envs[0])


class MetaLearner(Protocol):
    """One method's trainer for a group of seeds; `step` counts the loop steps done."""

    step: int

    def act(self) -> np.ndarray:
        """The actions [K, T, action_dim] the learner takes in its envs at this step (with its exploration)."""
        ...

    def train(self, steps: int) -> None:
        """Run `steps` more loop steps: act in every env, learn. Raise pipeline.guards.NonFiniteError on a
        non-finite observation, reward or loss."""
        ...

    def evaluate(self, envs: Grid, episodes: int, reset_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean dense and delayed returns [K, T] of the learner's evaluation policy on envs[k][i] over `episodes`
        episodes, episode e reset with `reset_seed + e`."""
        ...

    def save_state(self, folder: Path) -> None:
        """Write everything needed to continue bitwise into the empty `folder` (numpy, JSON and tensor files:
        nothing pickled; pipeline.resume checksums and versions them)."""
        ...

    def load_state(self, folder: Path) -> None:
        """Restore what `save_state` wrote into a freshly built learner of the same run."""
        ...

    def embeddings(self) -> tuple[list[str], list[tuple]]:
        """embeddings.csv's columns after (seed, task) and its rows (seed, task, values...); ([], []) if none."""
        ...

    # Optional: `finished_episodes() -> list[tuple]`, the EPISODE_COLUMNS rows of its finished training
    # episodes so far (saved with its state). Stage meta_train writes them to episodes.csv and the transferred ones to
    # transfers.csv; a learner without it gets both with their header only.


class MethodTrainer(Protocol):
    """The module a `MethodSpec.trainer` names. `seed_groups` is optional: without it the seeds train together."""

    def build(self, run: Run) -> MetaLearner:
        """A fresh learner; built before any state is loaded into it, in the same order every time."""
        ...

    def finish(self, learners: Sequence[MetaLearner], folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
        """Write the run's checkpoints into `folder` (data/meta/.../<method>/) from its trained learners (one per
        seed group, in seed order); `meta` (setting, method, tasks) belongs in them. Returns extra fields of
        metrics.json."""
        ...


def seed_groups(trainer: Any, params: Params, seeds: int) -> list[list[int]]:
    """The run's seed indices as the trainer groups them (its `seed_groups`), by default one group."""
    groups = getattr(trainer, "seed_groups", None)
    return [list(range(seeds))] if groups is None else groups(params, seeds)
