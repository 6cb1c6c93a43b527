"""Learning curves from `meta_train`'s curve.csv: the test return per env step, mean ± standard error over seeds."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.evaluation import standard_error


def return_curve(path: str | Path, split: str = "test") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env_steps, mean, stderr): each seed's return averaged over the split's tasks, then over seeds."""
    per_seed: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == split:
                per_seed[int(row["env_steps"])][int(row["seed"])].append(float(row["dense_return"]))
    if not per_seed:
        raise ValueError(f"{path}: no rows of split {split!r}")
    steps = np.array(sorted(per_seed))
    seed_means = [np.array([np.mean(v) for v in per_seed[s].values()]) for s in steps]
    mean = np.array([m.mean() for m in seed_means])
    stderr = np.array([standard_error(m) for m in seed_means])
    return steps, mean, stderr


def return_at(curve: tuple[np.ndarray, np.ndarray, np.ndarray], env_steps: int) -> dict[str, float]:
    """{mean, stderr, env_steps} of `return_curve`'s curve at its last evaluation at or before `env_steps`
    (a run evaluates at step 0, so there is one)."""
    steps, mean, stderr = curve
    at = np.flatnonzero(steps <= env_steps)
    if len(at) == 0:
        raise ValueError(f"the curve has no evaluation at or before {env_steps} env steps")
    i = at[-1]
    return {"mean": float(mean[i]), "stderr": float(stderr[i]), "env_steps": int(steps[i])}


def read_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(task [N], z [N, z_dim]) from embeddings.csv."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if not body:
        return np.zeros(0, int), np.zeros((0, len(header) - 2))
    data = np.array(body, dtype=float)
    return data[:, 1].astype(int), data[:, 2:]
