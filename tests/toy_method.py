"""A toy meta-RL method: every action a constant, no learning. What docs/adding-a-method.md walks through.

It is complete as a plug-in: copied to pipeline/methods/toy/__init__.py it is found by the registry (with its
params block `toy` in params.yaml and `toy` in meta_train.methods, as tests/test_dvc_pipeline.py does);
imported from a test, `registry.registered(*METHODS)` adds it for the test's duration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import write_json
from pipeline.envs.state import get_env_states, set_env_states
from pipeline.methods.protocol import Grid, Run
from pipeline.methods.registry import MethodSpec
from pipeline.schema import bounded


@dataclass
class ToyConfig:
    """Params block `toy`."""

    action: float = bounded(0.0, ge=-1, le=1)  # every action component, as a share of its bound


class ToyLearner:
    """`protocol.MetaLearner`: acts with a constant action in every env; learns nothing."""

    def __init__(self, run: Run):
        self.envs, self.step = run.envs, 0
        space = run.envs[0][0].action_space
        self.action = np.asarray(run.params.toy.action * space.high, np.float32)
        self.obs = [[env.reset(seed=run.params.seed + 1000 * s + i)[0] for i, env in enumerate(row)]
                    for s, row in zip(run.seeds, run.envs, strict=True)]  # fmt: skip

    def act(self) -> np.ndarray:
        return np.broadcast_to(self.action, (len(self.envs), len(self.envs[0]), *self.action.shape)).copy()

    def train(self, steps: int) -> None:
        for _ in range(steps):
            actions = self.act()
            for k, row in enumerate(self.envs):
                for i, env in enumerate(row):
                    obs, _, terminated, truncated, _ = env.step(actions[k, i])
                    self.obs[k][i] = env.reset()[0] if terminated or truncated else obs
            self.step += 1

    def evaluate(self, envs: Grid, episodes: int, reset_seed: int) -> tuple[np.ndarray, np.ndarray]:
        dense, delayed = np.zeros((len(envs), len(envs[0]))), np.zeros((len(envs), len(envs[0])))
        for k, row in enumerate(envs):
            for i, env in enumerate(row):
                for e in range(episodes):
                    env.reset(seed=reset_seed + e)
                    done = False
                    while not done:
                        _, reward, terminated, truncated, info = env.step(self.action)
                        dense[k, i] += info["dense_reward"] / episodes
                        delayed[k, i] += reward / episodes
                        done = terminated or truncated
        return dense, delayed

    def save_state(self, folder: Path) -> None:
        states, arrays = get_env_states([env for row in self.envs for env in row])
        np.savez(folder / "envs.npz", obs=np.array(self.obs), **arrays)
        (folder / "toy.json").write_text(json.dumps({"step": self.step, "envs": states}))

    def load_state(self, folder: Path) -> None:
        saved = json.loads((folder / "toy.json").read_text())
        with np.load(folder / "envs.npz") as arrays:
            set_env_states([env for row in self.envs for env in row], saved["envs"], dict(arrays))
            self.obs = [list(row) for row in arrays["obs"]]
        self.step = saved["step"]

    def embeddings(self) -> tuple[list[str], list[tuple]]:
        return [], []


def build(run: Run) -> ToyLearner:
    return ToyLearner(run)


def finish(learners: Sequence[ToyLearner], folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    write_json(folder / "toy.json", {**meta, "action": learners[0].action.tolist()})
    return {"constant_action": True}


METHODS = (
    MethodSpec(
        "toy",
        "Toy (constant action)",
        family="toy",
        trainer=__name__,
        params={"toy": ToyConfig},
        code=("pipeline/methods/toy",) if __name__ == "pipeline.methods.toy" else (),
    ),
)
