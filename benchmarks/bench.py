"""Benchmarks of the pipeline: `make bench` (= `python -m benchmarks.bench [--quick] [--out DIR]`).

Each section of the report is one function `measure(budget) -> JSON-able value`, listed in
SECTIONS; adding a measurement is adding one function and one line there. The results are
printed as a markdown table and written to `DIR/benchmarks.json` and `DIR/benchmarks.md`.

Comparisons (ours against stock Gymnasium, 1 against 2 torch threads) are measured in the
same run, in many short rounds, each running every contender back to back in a rotated
order, so that a neighbour process or slow drift of the machine affects all of them alike.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium
import mujoco
import numpy as np
import torch

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.atomic import write_json, write_text
from pipeline.data.replay import ReplayBuffer
from pipeline.envs import SETTINGS, Task, make_env, make_raw_env

REPO_ROOT = Path(__file__).resolve().parent.parent

# The stock task of each setting: make_env then builds exactly the stock physics, so its step
# rate against raw gymnasium is make_env's own overhead (registration, wrappers, reward delay).
STOCK_TASKS: dict[str, Task] = {
    "halfcheetah-armature": 0.1,
    "halfcheetah-mass": 1.0,
    "ant-damping": 1.0,
    "ant-cripple": None,
    "hopper-size": 0.05,
}
# A non-stock task of each setting, as users run them; its physics may cost more or less to step
# (e.g. a heavier cheetah touches the floor more often), which is not make_env's overhead.
USER_TASKS: dict[str, Task] = {
    "halfcheetah-armature": 0.5,
    "halfcheetah-mass": 1.5,
    "ant-damping": 2.0,
    "ant-cripple": 1,
    "hopper-size": 0.06,
}
META_DELAY = 350  # the reward delay of meta-training, measured as a second make_env column
RATIO_TARGET = 0.9  # make_env must run at >= 90% of the stock env's step rate
# Rough single-core step rates of the base envs; they size each timed block to a similar duration.
NOMINAL_STEPS_PER_S = {"HalfCheetah-v5": 35_000, "Hopper-v5": 16_000, "Ant-v5": 6_000}

HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM = 17, 6
TD3_THREADS = (1, 2)


@dataclass(frozen=True)
class Budget:
    """How much work each measurement does."""

    name: str
    env_block_s: float  # nominal duration of one timed block of env steps
    env_repeats: int
    td3_buffer: int  # random transitions prefilled into the replay buffer
    td3_warmup: int  # untimed updates before each timed block
    td3_updates: int  # updates per timed block...
    td3_block_max_s: float  # ...or fewer, if they take longer than this (an oversubscribed CPU)
    td3_repeats: int


FULL = Budget(
    "full",
    env_block_s=0.06,
    env_repeats=25,
    td3_buffer=10_000,
    td3_warmup=20,
    td3_updates=300,
    td3_block_max_s=3.0,
    td3_repeats=3,
)
QUICK = Budget(
    "quick",
    env_block_s=0.005,
    env_repeats=3,
    td3_buffer=1_000,
    td3_warmup=1,
    td3_updates=5,
    td3_block_max_s=0.5,
    td3_repeats=1,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- timing helpers ---------------------------------------------------------------------------


def per_second(run: Callable[[], int]) -> float:
    """Time `run()`, which does some work and returns how many units; return units per second.

    The cyclic garbage collector is off while timing (as in `timeit`): a collection costs ~0.1 s
    with torch loaded, and would land in whichever run happened to trigger it.
    """
    gc.disable()
    try:
        start = time.perf_counter()
        units = run()
        return units / (time.perf_counter() - start)
    finally:
        gc.enable()


def interleaved(runs: Mapping[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call every run once per round, in an order rotated each round; `repeats` rounds."""
    names = list(runs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            samples[name].append(runs[name]())
    return samples


def medians(samples: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over rounds of the ratio within a round, whose runs ran back to back.

    A neighbour process's load drifts over seconds; within a round it cancels, across rounds it
    does not: on a loaded 2-core machine, the ratio of the medians of two identical envs over 21
    rounds ranged 0.86-1.16, this paired ratio 0.96-1.01.
    """
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- sections ---------------------------------------------------------------------------------


def machine_info(budget: Budget) -> dict[str, Any]:
    """The machine, the software versions and the load when the benchmark started."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU present"
    log(f"machine: {os.cpu_count()} cores, {gpu}")
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "budget": budget.name,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "cuda_available": torch.cuda.is_available(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "mujoco": mujoco.__version__,
    }


def env_step_rates(budget: Budget) -> dict[str, dict[str, Any]]:
    """Steps/s of `make_env` against the stock env it is built on, and at a non-stock task.

    Rates are medians over rounds. `ratio` (make_env at the stock task, delay 0, over raw
    gymnasium; a paired ratio) is make_env's overhead and is held to RATIO_TARGET; `task_ratio`
    adds the cost of the non-stock task's physics.
    """
    rates = {}
    repeats = budget.env_repeats
    for setting, family in SETTINGS.items():
        stock, task = STOCK_TASKS[setting], USER_TASKS[setting]
        steps = max(1, round(budget.env_block_s * NOMINAL_STEPS_PER_S[family.base_env_id]))
        log(f"env {setting}: {repeats} x {steps} steps per env")
        envs = {
            "raw_gymnasium_steps_per_s": make_raw_env(setting),
            "make_env_steps_per_s": make_env(setting, stock),
            f"make_env_delay{META_DELAY}_steps_per_s": make_env(setting, stock, delay=META_DELAY),
            "make_env_task_steps_per_s": make_env(setting, task),
        }
        actions = random_actions(envs["raw_gymnasium_steps_per_s"].action_space, steps)
        samples = interleaved({name: partial(env_steps_per_s, env, actions) for name, env in envs.items()}, repeats)
        for env in envs.values():
            env.close()
        raw = samples["raw_gymnasium_steps_per_s"]
        ratio = paired_ratio(samples["make_env_steps_per_s"], raw)
        rates[setting] = {
            "stock_task": stock,
            "task": task,
            "steps": steps,
            "repeats": repeats,
            **medians(samples),
            "ratio": ratio,
            "task_ratio": paired_ratio(samples["make_env_task_steps_per_s"], raw),
            "target": RATIO_TARGET,
            "meets_target": ratio >= RATIO_TARGET,
        }
    return rates


def td3_update_rates(budget: Budget) -> dict[str, Any]:
    """TD3 updates/s at HalfCheetah dims, replay sampling included, per torch thread count."""
    config = TD3Config()
    bound = np.ones(HALFCHEETAH_ACTION_DIM, dtype=np.float32)
    agent = TD3(HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, -bound, bound, config, seed=0)
    buffer = random_replay_buffer(HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM, budget.td3_buffer)
    train = partial(train_td3, agent, buffer, config.batch_size)

    def updates_per_s(threads: int) -> float:
        with torch_threads(threads):
            train(budget.td3_warmup, budget.td3_block_max_s)
            return per_second(partial(train, budget.td3_updates, budget.td3_block_max_s))

    block = f"{budget.td3_updates} updates (at most {budget.td3_block_max_s} s)"
    log(f"td3: {budget.td3_repeats} x {block} at each of {TD3_THREADS} threads")
    runs = {f"threads_{n}": partial(updates_per_s, n) for n in TD3_THREADS}
    return {
        **medians(interleaved(runs, budget.td3_repeats)),
        "batch_size": config.batch_size,
        "hidden": config.hidden,
    }


def peak_rss_mb(budget: Budget) -> float:
    """Peak resident memory (MiB) of this benchmark process, over all sections before this one."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


SECTIONS: dict[str, Callable[[Budget], Any]] = {
    "machine": machine_info,
    "env_step_rate": env_step_rates,
    "td3_updates_per_s": td3_update_rates,
    "peak_rss_mb": peak_rss_mb,
}


# --- workloads --------------------------------------------------------------------------------


def random_actions(space: gymnasium.spaces.Box, steps: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(space.dtype)


def env_steps_per_s(env: gymnasium.Env, actions: np.ndarray) -> float:
    """Step `env` through `actions` from the same seeded reset, resetting at episode ends."""

    def run() -> int:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return len(actions)

    env.reset(seed=0)
    return per_second(run)


def random_replay_buffer(obs_dim: int, action_dim: int, size: int) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(obs_dim, action_dim, size, seed=0)
    for _ in range(size):
        buffer.add(
            rng.standard_normal(obs_dim),
            rng.uniform(-1, 1, action_dim),
            rng.standard_normal(),
            rng.standard_normal(obs_dim),
            rng.random() < 0.01,
        )
    return buffer


def train_td3(agent: TD3, buffer: ReplayBuffer, batch_size: int, updates: int, max_s: float) -> int:
    """Run `updates` TD3 updates, or fewer if `max_s` seconds pass first; return how many ran."""
    deadline = time.perf_counter() + max_s
    done = 0
    while done < updates and time.perf_counter() < deadline:
        agent.train(buffer.sample(batch_size))
        done += 1
    return done


# --- machine facts ----------------------------------------------------------------------------


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- report -----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Markdown table lines: first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]
        return "| " + " | ".join(padded) + " |"

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def render_section(value: Any) -> list[str]:
    """A dict of dicts as one row per key; a flat dict as key/value rows; a scalar as itself."""
    if not isinstance(value, Mapping):
        return [fmt(value)]
    if value and all(isinstance(row, Mapping) for row in value.values()):
        columns = list(dict.fromkeys(key for row in value.values() for key in row))
        rows = [[name, *(fmt(row.get(col, "")) for col in columns)] for name, row in value.items()]
        return table(["", *columns], rows)
    return table(["", "value"], [[key, fmt(v)] for key, v in value.items()])


def render_markdown(results: Mapping[str, Any]) -> str:
    """Each section under its name, introduced by the docstring of the function that measured it."""
    lines = ["# Benchmarks", ""]
    for section, value in results.items():
        doc = inspect.getdoc(SECTIONS[section]) if section in SECTIONS else None
        lines += [f"## {section}", "", *([doc, ""] if doc else []), *render_section(value), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny workloads: only check that everything runs")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    args = parser.parse_args(argv)
    # the stock Gymnasium MuJoCo envs declare unbounded observation Boxes
    warnings.filterwarnings("ignore", message=r".*Box observation space (minimum|maximum) value is.*")

    budget = QUICK if args.quick else FULL
    start = time.perf_counter()
    results = {}
    for name, measure in SECTIONS.items():
        section_start = time.perf_counter()
        results[name] = measure(budget)
        log(f"{name}: {time.perf_counter() - section_start:.1f} s")
    results["bench_wall_s"] = time.perf_counter() - start
    markdown = render_markdown(results)
    write_json(args.out / "benchmarks.json", results)
    write_text(args.out / "benchmarks.md", markdown)
    print(markdown)
    log(f"done in {results['bench_wall_s']:.1f} s; wrote {args.out}/benchmarks.json and benchmarks.md")


if __name__ == "__main__":
    main()
