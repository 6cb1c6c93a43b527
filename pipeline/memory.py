"""Peak memory of each long stage, estimated from params before it starts; a stage that would not fit refuses.

Buffers are preallocated with zeros (every page written), so a stage's peak resident memory is about
the process itself (Python, torch, MuJoCo, the envs and networks, activations, optimizer state, the
allocator's kept blocks: `PROCESS`, measured) plus the buffers its params ask for, counted byte by
byte below. `python -m benchmarks.memory` prints every stage's estimate at every profile and measures
peak RSS beside it (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024**2
PROCESS = 430 * MiB  # peak RSS of a stage minus its buffers: measured by benchmarks.memory (every setting)
FLOAT, INT64, BOOL = 4, 8, 1
COLLECT_KEY = "budgets.<profile>.collect_steps"


class NotEnoughMemory(MemoryError):
    """A stage would need more memory than the machine has available; the message names the params to lower."""


@dataclass
class Estimate:
    """A stage's buffers in bytes, by name, and the params keys that shrink them."""

    what: str
    parts: dict[str, int] = field(default_factory=dict)
    keys: Sequence[str] = ()

    @property
    def total(self) -> int:
        return PROCESS + sum(self.parts.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {size / MiB:.0f} MiB" for name, size in self.parts.items())
        return f"{self.total / MiB:.0f} MiB (process {PROCESS / MiB:.0f} MiB{', ' + parts if parts else ''})"


def transition_bytes(obs_dim: int, action_dim: int) -> int:
    """One stored transition of pipeline/data/replay.py: obs, next_obs, action, reward, not_done (float32)."""
    return (2 * obs_dim + action_dim + 2) * FLOAT


def td3_training(what: str, obs_dim: int, action_dim: int, steps: int, members: int) -> Estimate:
    """pretrain_source / pretrain_tasks: a replay of `steps` rows for each of `members` seeds or tasks."""
    replay = members * max(steps, 1) * transition_bytes(obs_dim, action_dim)
    return Estimate(what, {"replay": replay}, ("budgets.<profile>.pretrain_steps / transfer_pretrain_steps",))


def dataset_bytes(obs_dim: int, action_dim: int, rows: int) -> int:
    """One copy of a transition dataset's columns (pipeline/data/dataset.py)."""
    return rows * ((2 * obs_dim + action_dim + 1) * FLOAT + INT64 + 4 + 4 + 2 + 2)


def collect(obs_dim: int, action_dim: int, steps_per_task: int, tasks: int) -> Estimate:
    """The collected arrays, and the Arrow table and Parquet buffers built from them."""
    one = dataset_bytes(obs_dim, action_dim, steps_per_task * tasks)
    return Estimate(
        "collect", {"arrays": one, "arrow table": one, "parquet": one}, ("budgets.<profile>.collect_steps",)
    )


def train_translator(obs_dim: int, action_dim: int, steps_per_task: int, tasks: int) -> Estimate:
    """The dataset as read (Arrow table, numpy columns) and the fits' tensors (states, actions, deltas)."""
    rows = steps_per_task * tasks
    one = dataset_bytes(obs_dim, action_dim, rows)
    fits = rows * (2 * obs_dim + action_dim + 2) * FLOAT
    return Estimate(
        "train_translator",
        {"arrow table": one, "columns": one, "fit tensors": fits},
        ("budgets.<profile>.collect_steps",),
    )


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable of the machine; None where /proc/meminfo has none (e.g. not Linux)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(estimate: Estimate, available: int | None = None) -> None:
    """Raise NotEnoughMemory, naming the params keys to lower, when the estimate exceeds the available memory."""
    available = available_bytes() if available is None else available
    if available is not None and estimate.total > available:
        raise NotEnoughMemory(
            f"{estimate.what} needs about {estimate.describe()} but {available / MiB:.0f} MiB are available; "
            f"lower {', '.join(estimate.keys)}, or free memory"
        )
