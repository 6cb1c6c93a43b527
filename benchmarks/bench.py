"""Benchmarks of the pipeline: `make bench` (= `python -m benchmarks.bench [--quick] [--out DIR]`).

Each section of the report is one function `measure(budget) -> JSON-able value`, listed in
SECTIONS; adding a measurement is adding one function and one line there. The results are
printed as a markdown table and written to `DIR/benchmarks.json` and `DIR/benchmarks.md`.

Comparisons (ours against stock Gymnasium, ours against Stable-Baselines3's TD3, 1 against 2
torch threads, K seeds batched against one, bf16 against fp32) are measured in the same run, in
many short rounds, each running every contender back to back in a rotated order, so that a
neighbour process or slow drift of the machine affects all of them alike; a ratio is the median
over rounds of the ratio within a round. The CPU TD3 sections (`td3_vs_sb3`, `seed_batched`,
`precision`, `arithmetic_floor`) are views of one such measurement, `td3_rounds`, which the
first of them runs and the others reuse.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import importlib.metadata
import inspect
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import gymnasium
import mujoco
import numpy as np
import torch
import torch._dynamo
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.sb3_reference import sb3_sac, sb3_td3
from pipeline.agents.fast.cuda_graphs import WARMUP_UPDATES
from pipeline.agents.sac import SAC
from pipeline.agents.sac_config import SACConfig
from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.allocator import keep_freed_memory
from pipeline.atomic import write_json, write_text
from pipeline.data.replay import ReplayBuffer
from pipeline.envs import SETTINGS, Task, make_env, make_raw_env
from pipeline.hardware import cpu_capabilities, native_bf16
from pipeline.methods.mcat.config import MetaConfig
from pipeline.methods.mcat.loop import MetaTrainer, Switches, build_seed_models
from pipeline.methods.mcat.sil_config import SILConfig
from pipeline.models.config import ContextConfig, ForwardModelConfig, TranslatorConfig

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

# TD3 is measured at HalfCheetah's dims with TD3Config's defaults (2 x 256 nets, batch 256).
TD3_SETTING = "halfcheetah-armature"
HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM = 17, 6
TD3_THREADS = (1, 2)
SEED_COUNTS = (1, 3, 5)  # seeds batched into one TD3 model
PRECISION_THREADS = 2
PRECISION_SEEDS = (1, 5)
PRECISION_VARIANTS = ("fp32", "bf16", "fp32+compile", "bf16+compile")  # TD3Config.precision [+ compile]
COMPILED = "fp32+compile"  # measured beside eager fp32 at every seed count and thread count too
GRAPH_WARMUP_STEPS = WARMUP_UPDATES + 1  # untimed TD3 steps before a GPU contender's rounds: past warm-up and capture
GRAPH_CHECK_STEPS = 10  # TD3 steps of the eager-vs-graph weight comparison on the GPU
MATMUL_N = 256  # the floor's reference matmul: [n, n] @ [n, n], fp32
ROUND_ORDER_SEED = 2026  # round r runs its contenders in the order random.Random(this + r) shuffles them
SB3_VERSION = "2.9.2"  # the `bench` extra's pin
SB3_MISSING = f"stable-baselines3 not installed: pip install -e '.[bench]' (stable-baselines3=={SB3_VERSION})"

# Targets, per-seed updates/s over SB3 TD3's updates/s at the same thread count, same run.
SB3_RATIO_TARGETS = {1: 1.4, 3: 2.0, 5: 2.5}  # fp32, by seeds batched
BF16_RATIO_TARGET = 3.0  # bf16, seeds batched (K = 5), 2 threads; applies only if bf16 holds learning
FLOOR_FRACTION_TARGETS = {5: 0.6}  # fp32 per-seed updates/s over the arithmetic floor, by seeds batched
SAC_SEED_COUNTS = (1, 3)  # seeds batched into one SAC model
SAC_RATIO_TARGETS = {1: 1.0, 3: 1.5}  # per-seed updates/s over SB3 SAC's, by seeds batched (issue: Baselines I)
# Meta-training's step cost: MCAT on these armature tasks (params.yaml's train set) against plain TD3.
META_TASKS = (0.1, 0.2, 0.3, 0.4, 0.5)
META_RETRAIN_EVERY, META_RETRAIN_UPDATES = 5000, 200  # the default budget's refit schedule
RETRAIN_REPEATS = 3  # refits timed (one thread), median
META_COST_TARGET = 1.3  # mcat's time per update step over plain TD3's
META_BATCHED_SEEDS = 3  # meta_train's default: the profile's 3 seeds as one batched model
META_THROUGHPUT_TARGET = 0.75  # mcat's env steps/s per seed, refits amortised, over the batched TD3 loop's
ALLOCATOR_SEEDS = (1, 5)  # seeds batched in the allocator section's probes
ALLOCATOR_ROUNDS, ALLOCATOR_BLOCK_S = 4, 1.0  # each probe process times 3 blocks


@dataclass(frozen=True)
class Budget:
    """How much work each measurement does."""

    name: str
    env_block_s: float  # nominal duration of one timed block of env steps
    env_repeats: int
    td3_buffer: int  # random transitions prefilled into each replay buffer
    td3_warmup_s: float  # untimed updates (at least one TD3 step) before each timed block
    td3_block_s: float  # duration of one timed block of TD3 updates or matmuls (at least one step)
    td3_repeats: int  # rounds over all TD3 contenders
    td3_compile: bool  # measure the torch.compile variants (compiling takes ~20 s each)


FULL = Budget(
    "full",
    env_block_s=0.06,
    env_repeats=25,
    td3_buffer=10_000,
    td3_warmup_s=0.05,
    td3_block_s=0.25,
    td3_repeats=21,
    td3_compile=True,
)
QUICK = Budget(
    "quick",
    env_block_s=0.005,
    env_repeats=3,
    td3_buffer=1_000,
    td3_warmup_s=0.0,
    td3_block_s=0.0,
    td3_repeats=1,
    td3_compile=False,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- timing helpers ---------------------------------------------------------------------------

Key = TypeVar("Key", bound=Hashable)


def per_second(run: Callable[[], float]) -> float:
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


def interleaved(runs: Mapping[Key, Callable[[], float]], repeats: int) -> dict[Key, list[float]]:
    """Call every run once per round, in an order shuffled each round (seeded); `repeats` rounds.

    Shuffled rather than rotated: a rotation keeps every run's predecessor, so whatever one run
    leaves behind (a 2-thread run's spinning OpenMP workers, a warm cache) would always land on the same next one."""
    names = list(runs)
    samples: dict[Key, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in random.Random(ROUND_ORDER_SEED + r).sample(names, len(names)):
            samples[name].append(runs[name]())
    return samples


def medians(samples: Mapping[Key, Sequence[float]]) -> dict[Key, float]:
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


def run_for(step: Callable[[], float], seconds: float) -> float:
    """Call `step()` (which returns the units of work it did) until `seconds` pass, at least once."""
    deadline = time.perf_counter() + seconds
    units = step()
    while time.perf_counter() < deadline:
        units += step()
    return units


def rate(step: Callable[[], float], threads: int, budget: Budget, sync: Callable[[], None] | None = None) -> float:
    """Units/s of `step()` at `threads` torch threads: warm up (untimed), then one timed block.

    The warm-up follows every switch of thread count; `sync` (e.g. torch.cuda.synchronize) ends
    each block, so that queued device work is inside the block that queued it.
    """

    def block(seconds: float) -> float:
        units = run_for(step, seconds)
        if sync is not None:
            sync()
        return units

    with torch_threads(threads):
        block(budget.td3_warmup_s)
        return per_second(partial(block, budget.td3_block_s))


# --- sections ---------------------------------------------------------------------------------


def machine_info(budget: Budget) -> dict[str, Any]:
    """The machine, the software versions and the load when the benchmark started."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU present"
    load = os.getloadavg()[0]
    isa = cpu_isa(proc_cpuinfo())
    log(f"machine: {os.cpu_count()} cores, {gpu}, load average {load:.2f}")
    log(
        f"cpu: {isa['cpu_model']} (family {isa['cpu_family']}, model {isa['cpu_model_number']}), torch kernels "
        f"{isa['torch_cpu_capability']}, native bf16 matmuls: {'yes' if isa['native_bf16'] else 'no (emulated)'}"
    )
    if load > 0.5:
        # torch's 2-thread runs spin-wait on a busy core: with one core taken they ran ~50x slower here
        log("warning: other processes are using the CPUs; the timings, and 2-thread ones most, are unreliable")
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "budget": budget.name,
        "cpu_model": isa.pop("cpu_model"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        **isa,
        "load_avg_1min": load,
        "cuda_available": torch.cuda.is_available(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "mujoco": mujoco.__version__,
        "stable_baselines3": sb3_version(),
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


def td3_vs_sb3(budget: Budget) -> dict[str, Any]:
    """Updates/s of our TD3 against Stable-Baselines3's, one seed, fp32, per torch thread count.

    Both at HalfCheetah dims (17 obs, 6 actions), 2 x 256 ReLU nets, batch 256, TD3Config's
    gamma, tau, lr, target noise and policy delay, sampling from a prefilled replay buffer of
    random transitions: pure gradient updates, replay sampling included. SB3 runs stock
    (`model.train(gradient_steps=2)`; its Adam is not fused, it records each loss with `.item()`).
    `ratio` is ours (eager, the default) over SB3 (paired within rounds), held to the issue's target;
    `*_compiled` is the same with `td3.compile: true` (an fp32 option; compiled under that thread count).
    """
    rounds = td3_rounds(budget)
    out: dict[str, Any] = {**rounds.setup, "stable_baselines3": sb3_version() or SB3_MISSING}
    for threads in TD3_THREADS:
        sb3 = rounds.samples.get(Contender("sb3", 1, threads))
        row: dict[str, Any] = {} if sb3 is None else {"sb3_updates_per_s": statistics.median(sb3)}
        for variant, suffix in (("fp32", ""), (COMPILED, "_compiled")):
            ours = rounds.samples.get(Contender(variant, 1, threads))
            if ours is None:
                continue
            row[f"ours{suffix}_updates_per_s"] = statistics.median(ours)
            if sb3 is not None:
                ratio, target = paired_ratio(ours, sb3), SB3_RATIO_TARGETS[1]
                row |= {f"ratio{suffix}": ratio, "target": target, f"meets_target{suffix}": ratio >= target}
        out[f"threads_{threads}"] = row
    return out


def seed_batched(budget: Budget) -> dict[str, Any]:
    """K seeds batched into one TD3 model (fp32), per thread count: one update updates all K seeds.

    `per_seed_updates_per_s` = K x updates/s; `vs_sb3` is that over SB3's single-seed updates/s
    at the same thread count, and `floor_fraction` over the arithmetic floor (see
    `arithmetic_floor`), both paired within rounds. `meets_target` requires `vs_sb3 >= target`
    and, where given, `floor_fraction >= floor_target`. The `*_compiled` keys are the same
    for the model with `td3.compile: true`.
    """
    rounds = td3_rounds(budget)
    flop = analytic_update_flop(TD3Config())
    out: dict[str, Any] = {}
    for threads in TD3_THREADS:
        matmul = rounds.samples[Contender("matmul", 0, threads)]
        sb3 = rounds.samples.get(Contender("sb3", 1, threads))
        for k in SEED_COUNTS:
            row: dict[str, Any] = {"seeds": k, "threads": threads}
            for variant, suffix in (("fp32", ""), (COMPILED, "_compiled")):
                samples = rounds.samples.get(Contender(variant, k, threads))
                if samples is None:
                    continue
                per_seed = [k * r for r in samples]
                floor_fraction = paired_ratio([r * flop for r in per_seed], matmul)
                if not suffix:
                    row["updates_per_s"] = statistics.median(per_seed) / k
                row |= {f"per_seed_updates_per_s{suffix}": statistics.median(per_seed),
                        f"floor_fraction{suffix}": floor_fraction}  # fmt: skip
                if sb3 is not None:
                    vs_sb3, target = paired_ratio(per_seed, sb3), SB3_RATIO_TARGETS[k]
                    meets = vs_sb3 >= target
                    row |= {f"vs_sb3{suffix}": vs_sb3, "target": target}
                    if k in FLOOR_FRACTION_TARGETS:
                        row["floor_target"] = FLOOR_FRACTION_TARGETS[k]
                        meets = meets and floor_fraction >= FLOOR_FRACTION_TARGETS[k]
                    row[f"meets_target{suffix}"] = meets
            out[f"k{k}_threads_{threads}"] = row
    return out


def precision(budget: Budget) -> dict[str, Any]:
    """Per-seed updates/s of the TD3Config speed options at 2 threads: fp32 or bf16, eager or compiled.

    `vs_fp32` is over the eager fp32 model with the same seeds, `vs_sb3` over SB3's single-seed
    updates/s, both paired within rounds; `compile_s` is the first update pair's time (the compile).
    The bf16 target holds only if bf16 also holds learning, which this speed benchmark does not check,
    and is in reach only where bf16 matmuls are native (`machine.native_bf16`); elsewhere torch emulates
    them and bf16 runs 30-40x slower than fp32.
    """
    rounds = td3_rounds(budget)
    sb3 = rounds.samples.get(Contender("sb3", 1, PRECISION_THREADS))
    out: dict[str, Any] = {"threads": PRECISION_THREADS}
    for k in PRECISION_SEEDS:
        fp32 = [k * r for r in rounds.samples[Contender("fp32", k, PRECISION_THREADS)]]
        for variant in PRECISION_VARIANTS:
            name = f"{variant}_k{k}"
            if variant in rounds.unavailable:
                out[name] = {"variant": variant, "seeds": k, "status": rounds.unavailable[variant]}
                continue
            contender = Contender(variant, k, PRECISION_THREADS)
            per_seed = [k * r for r in rounds.samples[contender]]
            row: dict[str, Any] = {
                "variant": variant,
                "seeds": k,
                "per_seed_updates_per_s": statistics.median(per_seed),
                "vs_fp32": paired_ratio(per_seed, fp32),
            }
            if contender in rounds.compile_s:
                row["compile_s"] = rounds.compile_s[contender]
            if sb3 is not None:
                row["vs_sb3"] = paired_ratio(per_seed, sb3)
                if variant.startswith("bf16") and k > 1:
                    row |= {"target": BF16_RATIO_TARGET, "meets_target": row["vs_sb3"] >= BF16_RATIO_TARGET}
            out[name] = row
    return out


def arithmetic_floor(budget: Budget) -> dict[str, Any]:
    """FLOP per TD3 update (one seed) and the fp32 floor: the updates/s of doing only its matmuls.

    `flop_per_update_analytic` counts the matmuls from the dims (`analytic_update_flop`);
    `flop_per_update_counted` is torch's FlopCounterMode over two real updates (one actor
    update), halved, and `flop_per_seed_update_counted_k5` the same for 5 batched seeds over 5.
    The floor is the rate of a 256 x 256 x 256 fp32 matmul (GFLOP/s, in the same rounds) over the
    analytic FLOP: `floor_updates_per_s` per seed, at each thread count; `floor_vs_sb3` is that
    over SB3's updates/s, the highest `vs_sb3` any fp32 seed batching can reach.
    """
    rounds = td3_rounds(budget)
    flop = analytic_update_flop(TD3Config())
    out: dict[str, Any] = {
        "flop_per_update_analytic": flop,
        **{name: float(count) for name, count in rounds.counted_flop.items()},
        "matmul": f"{MATMUL_N}x{MATMUL_N}x{MATMUL_N} fp32",
    }
    for threads in TD3_THREADS:
        matmul = rounds.samples[Contender("matmul", 0, threads)]
        flops = statistics.median(matmul)
        row = {"matmul_gflop_per_s": flops / 1e9, "floor_updates_per_s": flops / flop}
        if (sb3 := rounds.samples.get(Contender("sb3", 1, threads))) is not None:
            row["floor_vs_sb3"] = paired_ratio([f / flop for f in matmul], sb3)
        out[f"threads_{threads}"] = row
        log(f"fp32 floor at {threads} threads: {flops / 1e9:.1f} GFLOP/s / {flop / 1e6:.1f} MFLOP = {flops / flop:.0f}")
    return out


def gpu_update_rates(budget: Budget) -> dict[str, Any]:
    """Our TD3's updates/s on the GPU: fp32 and bf16, eager and replayed as CUDA graphs, K = 1 and 5 seeds batched.

    `vs_eager` is a graph contender's updates/s over the eager one's with the same precision and
    seeds (paired within rounds); `graph_check` compares 5-seed fp32 weights after GRAPH_CHECK_STEPS
    steps of an eager and a graph-replaying agent fed the same batches (`max_abs_weight_diff`)."""
    if not torch.cuda.is_available():
        return {"status": "no GPU present"}
    torch.cuda.reset_peak_memory_stats()
    rates = device_update_rates(budget, "cuda", torch.cuda.synchronize)
    return {
        "gpu": torch.cuda.get_device_name(0),
        **rates,
        "graph_check": graph_check(budget, "cuda"),
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20,
    }


def device_update_rates(budget: Budget, device: str, sync: Callable[[], None]) -> dict[str, dict[str, float]]:
    """fp32 and bf16 TD3, eager and (on CUDA) as CUDA graphs, with 1 and 5 seeds on `device`, in interleaved rounds."""
    configs = {v: cfg for v in ("fp32", "bf16") if (cfg := variant_config(v)[0]) is not None}
    graph_options = (False, True) if torch.device(device).type == "cuda" else (False,)
    models = {
        (f"{v}{'+graph' if graph else ''}", k): Td3Contender(cfg, k, budget.td3_buffer, device, cuda_graph=graph)
        for v, cfg in configs.items()
        for k in (1, 5)
        for graph in graph_options
    }
    for model in models.values():  # first launches (CUDA context, kernel selection), graph warm-up and capture
        for _ in range(GRAPH_WARMUP_STEPS):
            model.step()
    runs = {key: partial(rate, model.step, torch.get_num_threads(), budget, sync) for key, model in models.items()}
    repeats = max(1, budget.td3_repeats // 4)  # a short check, not the comparison of record
    log(f"{device}: {repeats} rounds of {len(runs)} contenders")
    samples = interleaved(runs, repeats)
    out = {}
    for (variant, k), values in samples.items():
        per_update = statistics.median(values)
        row = {"seeds": k, "updates_per_s": per_update, "per_seed_updates_per_s": k * per_update}
        if variant.endswith("+graph"):
            row["vs_eager"] = paired_ratio(values, samples[(variant.removesuffix("+graph"), k)])
        out[f"{variant}_k{k}"] = row
    return out


def graph_check(budget: Budget, device: str, seeds: int = 5) -> dict[str, Any]:
    """Largest weight difference between an eager and a CUDA-graph fp32 agent after the same updates."""
    config = variant_config("fp32")[0]
    assert config is not None
    eager, graphed = (Td3Contender(config, seeds, budget.td3_buffer, device, cuda_graph=g) for g in (False, True))
    for _ in range(GRAPH_CHECK_STEPS):
        eager.step()
        graphed.step()
    pairs = zip(eager.agent.named_parameters(), graphed.agent.named_parameters(), strict=True)
    diff = max(float((a - b).abs().max()) for (_, a), (_, b) in pairs)
    return {"seeds": seeds, "steps": GRAPH_CHECK_STEPS, "max_abs_weight_diff": diff}


def sac_vs_sb3(budget: Budget) -> dict[str, Any]:
    """Updates/s of our SAC (`pipeline.agents.sac`, SACConfig's defaults: 2 x 256 nets, batch 256, learned
    temperature) against Stable-Baselines3's SAC with the same settings, at HalfCheetah dims, from a prefilled
    replay of random transitions, per torch thread count, in interleaved rounds as the TD3 sections.
    `vs_sb3` is per-seed updates/s (K x updates/s of a K-seed model) over SB3's single-seed updates/s, paired
    within rounds, held to SAC_RATIO_TARGETS (at least as fast with one seed, 1.5x per seed with 3)."""
    config = SACConfig()
    contenders: dict[Contender, Callable[[], float]] = {}
    if sb3_version():
        sb3 = Sb3SacContender(config, budget.td3_buffer)
        contenders |= {Contender("sb3", 1, t): sb3.step for t in TD3_THREADS}
    for k in SAC_SEED_COUNTS:
        ours = SacContender(config, k, budget.td3_buffer)
        contenders |= {Contender("fp32", k, t): ours.step for t in TD3_THREADS}
    runs = {c: partial(rate, step, c.threads, budget) for c, step in contenders.items()}
    samples = interleaved(runs, budget.td3_repeats)
    out: dict[str, Any] = {"hidden": config.hidden, "batch_size": config.batch_size,
                           "stable_baselines3": sb3_version() or SB3_MISSING}  # fmt: skip
    for threads in TD3_THREADS:
        sb3_samples = samples.get(Contender("sb3", 1, threads))
        row: dict[str, Any] = {} if sb3_samples is None else {"sb3_updates_per_s": statistics.median(sb3_samples)}
        for k in SAC_SEED_COUNTS:
            per_seed = [k * x for x in samples[Contender("fp32", k, threads)]]
            row[f"ours_k{k}_per_seed_updates_per_s"] = statistics.median(per_seed)
            if sb3_samples is not None:
                ratio = paired_ratio(per_seed, sb3_samples)
                row |= {f"vs_sb3_k{k}": ratio, f"target_k{k}": SAC_RATIO_TARGETS[k],
                        f"meets_target_k{k}": ratio >= SAC_RATIO_TARGETS[k]}  # fmt: skip
        out[f"threads_{threads}"] = row
        log(f"sac: {threads} thread(s): {row}")
    return out


def meta_step_cost(budget: Budget) -> dict[str, Any]:
    """Cost per env step of MCAT (a loop step: T tasks' env steps, T context-TD3 updates, SIL updates at
    SILConfig's default rate, cached contexts) against plain TD3 (one env step, one update), one thread, same
    nets and batch, same rounds: one seed (the keys below) and META_BATCHED_SEEDS seeds batched (`batched`).

    `ratio_per_env_step` is the time per env step, MCAT over plain TD3 (target META_COST_TARGET); the C/F/H
    refits, every `meta_retrain_every` env steps, are timed apart (median of RETRAIN_REPEATS) and added per env
    step (default budget: META_RETRAIN_UPDATES updates per fit) in `ratio_with_refits`. `batched` compares
    steady-state env steps/s per seed, refits amortised, of MCAT's loop and the batched TD3 loop (target
    META_THROUGHPUT_TARGET)."""
    single = _meta_against_td3(budget, seeds=1)
    batched = _meta_against_td3(budget, seeds=META_BATCHED_SEEDS)
    with_refits = single["ratio_per_env_step"] + single["retrain_s_per_env_step"] * single["plain_td3_env_steps_per_s"]
    throughput = 1 / (1 / batched["mcat_env_steps_per_s"] + batched["retrain_s_per_env_step"])  # per seed
    return {
        "tasks": len(META_TASKS),
        **single,
        "ratio_with_refits": with_refits,
        "target": META_COST_TARGET,
        "meets_target": with_refits <= META_COST_TARGET,
        "batched": {
            "seeds": META_BATCHED_SEEDS,
            "td3_env_steps_per_s_per_seed": batched["plain_td3_env_steps_per_s"],
            "mcat_env_steps_per_s_per_seed": batched["mcat_env_steps_per_s"],
            "retrain_s": batched["retrain_s"],
            "mcat_env_steps_per_s_per_seed_with_refits": throughput,
            "ratio": throughput / batched["plain_td3_env_steps_per_s"],
            "target": META_THROUGHPUT_TARGET,
            "meets_target": throughput / batched["plain_td3_env_steps_per_s"] >= META_THROUGHPUT_TARGET,
        },
    }


def _meta_against_td3(budget: Budget, seeds: int) -> dict[str, Any]:
    """Env steps/s per seed of plain TD3's loop (`seeds` envs, one batched update per step) and of MCAT's (seeds
    x T envs, T batched updates per step), one thread, interleaved rounds; and the time of one C/F/H refit."""
    tasks = list(META_TASKS)
    torch.manual_seed(0)
    plain_envs = [make_env(TD3_SETTING, tasks[0]) for _ in range(seeds)]
    space = plain_envs[0].action_space
    obs_dim, act_dim = plain_envs[0].observation_space.shape[0], space.shape[0]
    plain = TD3(obs_dim, act_dim, space.low, space.high, TD3Config(), seed=0, n_seeds=seeds)
    buffer = ReplayBuffer(obs_dim, act_dim, capacity=budget.td3_buffer + 100_000, seed=0, n_seeds=seeds)
    obs = np.stack([env.reset(seed=k)[0] for k, env in enumerate(plain_envs)])

    def plain_step() -> float:
        nonlocal obs
        noise = np.random.normal(0, 0.1, (seeds, act_dim))
        actions = np.clip(plain.select_action(obs).reshape(seeds, act_dim) + noise, space.low, space.high)
        next_obs, rewards, terminated = np.empty_like(obs), np.empty(seeds), np.empty(seeds, dtype=bool)
        for k, env in enumerate(plain_envs):
            next_obs[k], rewards[k], terminated[k], truncated, _ = env.step(actions[k])
            if terminated[k] or truncated:
                next_obs[k] = env.reset()[0]
        buffer.add(obs, actions.astype(np.float32), rewards, next_obs, terminated)
        obs = next_obs
        if buffer.size >= 256:
            plain.train(buffer.sample(256))
        return 1.0

    for _ in range(max(budget.td3_buffer, 256)):
        plain_step()
    context, forward, translator = ContextConfig(), ForwardModelConfig(), TranslatorConfig()
    envs = [[make_env(TD3_SETTING, t, delay=META_DELAY) for t in tasks] for _ in range(seeds)]
    agent = TD3(obs_dim, act_dim, space.low, space.high, TD3Config(), context_dim=context.z_dim, seed=0,
                n_seeds=seeds)  # fmt: skip
    models = [build_seed_models(obs_dim, act_dim, space.low, space.high, context, forward, translator)
              for _ in range(seeds)]  # fmt: skip
    retrain_updates = 5 if budget.name == "quick" else META_RETRAIN_UPDATES
    trainer = MetaTrainer(
        agent, models, envs, Switches(transfer=True, sil=True), meta=MetaConfig(replay_capacity=200_000),
        context=context, forward=forward, translator=translator, sil=SILConfig(), retrain_every=10**9,
        retrain_updates=retrain_updates, seed=0,
    )  # fmt: skip
    warm = max(budget.td3_buffer // len(tasks), 300)
    trainer.run(warm, start_steps=warm // 2, eval_every=10**9, evaluate=lambda step: None, progress=False)

    def retrain() -> float:  # C + F and H fits on the replay, as every meta_retrain_every env steps
        started = time.perf_counter()
        trainer.retrain()
        return time.perf_counter() - started

    with torch_threads(1):  # at the thread count of the per-step rates
        retrain_s = statistics.median(retrain() for _ in range(1 if budget.name == "quick" else RETRAIN_REPEATS))

    def meta_step() -> float:
        trainer.run(trainer.step + 1, start_steps=0, eval_every=10**9, evaluate=lambda step: None, progress=False)
        return 1.0

    with torch_threads(1):
        samples = interleaved(
            {"plain": partial(rate, plain_step, 1, budget), "mcat": partial(rate, meta_step, 1, budget)},
            budget.td3_repeats,
        )
    rates = medians(samples)
    return {
        "plain_td3_env_steps_per_s": rates["plain"],  # per seed: each loop step is one env step per seed
        "mcat_env_steps_per_s": rates["mcat"] * len(tasks),  # per seed: T env steps per loop step
        "ratio_per_env_step": paired_ratio(samples["plain"], samples["mcat"]) / len(tasks),  # time, mcat / plain
        "retrain_s": retrain_s,
        "retrain_s_per_env_step": retrain_s / META_RETRAIN_EVERY,  # every META_RETRAIN_EVERY env steps per seed
    }


def allocator(budget: Budget) -> dict[str, Any]:
    """TD3 updates/s (fp32, one thread) with glibc malloc's default thresholds and with
    `pipeline.allocator.keep_freed_memory` (which every training stage and this benchmark call first), each in a
    fresh process (`benchmarks.allocator_probe`), alternating, `rounds` rounds.

    `ratio` is kept over default updates/s, paired within rounds; `page_faults_per_update` shows the
    cause: with the default thresholds each update's temporaries are mapped and zero-filled anew."""
    rounds = 1 if budget.name == "quick" else ALLOCATOR_ROUNDS
    block_s = 0.05 if budget.name == "quick" else ALLOCATOR_BLOCK_S
    out: dict[str, Any] = {"rounds": rounds}
    for k in ALLOCATOR_SEEDS:
        samples: dict[str, list[dict[str, Any]]] = {"default": [], "kept": []}
        for r in range(rounds):
            for variant in ("default", "kept") if r % 2 == 0 else ("kept", "default"):
                flags = ["--keep-freed-memory"] if variant == "kept" else []
                command = [sys.executable, "-m", "benchmarks.allocator_probe", "--seeds", str(k), "--block-s",
                           str(block_s), "--buffer", str(budget.td3_buffer), *flags]  # fmt: skip
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
                samples[variant].append(json.loads(done.stdout.splitlines()[-1]))
        rates = {v: [s["updates_per_s"] for s in values] for v, values in samples.items()}
        faults = {v: statistics.median(s["page_faults_per_update"] for s in values) for v, values in samples.items()}
        out[f"k{k}"] = {
            "seeds": k,
            "default_updates_per_s": statistics.median(rates["default"]),
            "kept_updates_per_s": statistics.median(rates["kept"]),
            "ratio": paired_ratio(rates["kept"], rates["default"]),
            "default_page_faults_per_update": faults["default"],
            "kept_page_faults_per_update": faults["kept"],
            "applied": all(s["applied"] for s in samples["kept"]),
        }
        log(f"allocator: {k} seed(s) kept/default {out[f'k{k}']['ratio']:.3f}")
    return out


def td3_round_samples(budget: Budget) -> dict[str, list[float]]:
    """Every TD3 contender's rate in each round, in round order (updates/s of the whole model; the
    matmul's FLOP/s): the paired ratios of the sections above recomputed from the JSON. JSON only."""
    rounds = td3_rounds(budget)
    return {f"{c.variant}_k{c.seeds}_threads_{c.threads}": samples for c, samples in rounds.samples.items()}


def peak_rss_mb(budget: Budget) -> float:
    """Peak resident memory (MiB) of this benchmark process, over all sections before this one."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


SECTIONS: dict[str, Callable[[Budget], Any]] = {
    "machine": machine_info,
    "env_step_rate": env_step_rates,
    "td3_vs_sb3": td3_vs_sb3,
    "seed_batched": seed_batched,
    "precision": precision,
    "arithmetic_floor": arithmetic_floor,
    "sac_vs_sb3": sac_vs_sb3,
    "gpu": gpu_update_rates,
    "meta_step_cost": meta_step_cost,
    "allocator": allocator,
    "peak_rss_mb": peak_rss_mb,
}


# --- the CPU TD3 rounds -----------------------------------------------------------------------


class Contender(NamedTuple):
    variant: str  # "sb3", "matmul", or one of PRECISION_VARIANTS
    seeds: int  # seeds batched into one model (0 for the matmul)
    threads: int


@dataclass
class Td3Rounds:
    samples: dict[Contender, list[float]]  # per round: updates/s of the whole model (matmul: FLOP/s)
    setup: dict[str, Any]  # what every contender shares
    compile_s: dict[Contender, float]  # time of the first update pair of each compiled contender
    counted_flop: dict[str, float]  # FlopCounterMode counts, per seed update
    unavailable: dict[str, str]  # variant -> why it was not measured


@functools.cache
def td3_rounds(budget: Budget) -> Td3Rounds:
    """Every CPU TD3 contender (and the floor's matmul) at every thread count, in the same rounds.

    Measured once per run (cached; main clears the cache), so that every TD3 section's ratio is
    paired within rounds. One model (agent and replay buffer) per variant and seed count serves
    both thread counts; each timed block runs whole TD3 steps of `policy_freq` updates (one actor
    update), so that every block has the same share of actor updates.
    """
    config = variant_config("fp32")[0]
    assert config is not None
    contenders: dict[Contender, Callable[[], float]] = {}
    unavailable: dict[str, str] = {}
    compile_s: dict[Contender, float] = {}
    counted_flop: dict[str, float] = {}

    sb3 = Sb3Contender(config, budget.td3_buffer) if sb3_version() else None
    if sb3 is not None:
        counted_flop["sb3_flop_per_update_counted"] = counted_update_flop(sb3.step)
        contenders |= {Contender("sb3", 1, t): sb3.step for t in TD3_THREADS}
    else:
        log(SB3_MISSING)
    for k in SEED_COUNTS:
        ours = Td3Contender(config, k, budget.td3_buffer)
        contenders |= {Contender("fp32", k, t): ours.step for t in TD3_THREADS}
        if k == 1:
            counted_flop["flop_per_update_counted"] = counted_update_flop(ours.step)
        if k == 5:
            counted_flop["flop_per_seed_update_counted_k5"] = counted_update_flop(ours.step) / k
    # the speed options: precision's variants at its thread count, and fp32+compile beside every fp32 contender
    options = [Contender(v, k, PRECISION_THREADS) for v in PRECISION_VARIANTS[1:] for k in PRECISION_SEEDS]
    options += [Contender(COMPILED, k, t) for k in SEED_COUNTS for t in TD3_THREADS]
    # each compiled model is one more dynamo cache entry of the same loss functions: allow them all
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, len(options))
    for contender in dict.fromkeys(options):
        variant_cfg, why = variant_config(contender.variant)
        compiled = contender.variant.endswith("+compile")
        if variant_cfg is None or (compiled and not budget.td3_compile):
            unavailable[contender.variant] = why or f"not measured with the {budget.name} budget"
            continue
        model = Td3Contender(variant_cfg, contender.seeds, budget.td3_buffer)
        if compiled:  # inductor's CPU kernels are built for the thread count they are compiled under
            with torch_threads(contender.threads):
                start = time.perf_counter()
                model.step()
                compile_s[contender] = time.perf_counter() - start
            log(f"td3: compiled {contender.variant}, {contender.seeds} seeds, {contender.threads} threads "
                f"in {compile_s[contender]:.1f} s")  # fmt: skip
        contenders[contender] = model.step
    for threads in TD3_THREADS:
        contenders[Contender("matmul", 0, threads)] = matmul_step()

    runs = {c: partial(rate, step, c.threads, budget) for c, step in contenders.items()}
    log(f"td3: {budget.td3_repeats} rounds of {len(runs)} contenders, {budget.td3_block_s} s blocks")
    samples = interleaved(runs, budget.td3_repeats)
    setup = {
        "obs_dim": HALFCHEETAH_OBS_DIM,
        "action_dim": HALFCHEETAH_ACTION_DIM,
        "hidden": config.hidden,
        "batch_size": config.batch_size,
        "policy_freq": config.policy_freq,
        "replay_size": budget.td3_buffer,
        "rounds": budget.td3_repeats,
        "block_s": budget.td3_block_s,
    }
    return Td3Rounds(samples, setup, compile_s, counted_flop, unavailable)


def variant_config(variant: str) -> tuple[TD3Config | None, str | None]:
    """TD3Config of a variant such as "bf16+compile", or (None, why) if TD3Config lacks its field."""
    precision_name, _, compiled = variant.partition("+")
    fields = {f.name for f in dataclasses.fields(TD3Config)}
    changes: dict[str, Any] = {}
    if "precision" in fields:
        from pipeline.agents.td3_config import Precision

        changes["precision"] = Precision[precision_name]
    elif precision_name != "fp32":
        return None, "not available: TD3Config has no `precision` field"
    if compiled:
        if "compile" not in fields:
            return None, "not available: TD3Config has no `compile` field"
        changes["compile"] = True
    return dataclasses.replace(TD3Config(), **changes), None


class Td3Contender:
    """Our TD3 with `seeds` batched seeds and a replay buffer of random transitions."""

    def __init__(
        self, config: TD3Config, seeds: int, buffer_size: int, device: str = "cpu", *, cuda_graph: bool = False
    ):
        obs, act = HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM
        bound = np.ones(act, dtype=np.float32)
        self.config = config
        self.agent = TD3(obs, act, -bound, bound, config, seed=0, n_seeds=seeds, device=device, cuda_graph=cuda_graph)
        self.buffer = ReplayBuffer(obs, act, buffer_size, n_seeds=seeds, device=device)
        for transition in random_transitions(buffer_size, seeds):
            self.buffer.add(*transition)

    def step(self) -> int:
        """`policy_freq` updates, the last with the actor update; returns how many."""
        for _ in range(self.config.policy_freq):
            self.agent.train(self.buffer.sample(self.config.batch_size))
        return self.config.policy_freq


class Sb3Contender:
    """Stable-Baselines3's TD3 with our nets and hyperparameters and the same random transitions."""

    def __init__(self, config: TD3Config, buffer_size: int):
        from stable_baselines3.common.logger import Logger

        env = make_raw_env(TD3_SETTING)  # only its spaces are used: HalfCheetah's dims
        assert env.observation_space.shape == (HALFCHEETAH_OBS_DIM,)
        assert env.action_space.shape == (HALFCHEETAH_ACTION_DIM,)
        self.config = config
        self.model = sb3_td3(config, env, buffer_size=buffer_size, seed=0)
        # train() records its losses; learn() would set a logger. No outputs, and no folder: SB3's
        # configure(None, []) would create an empty /tmp/SB3-<time> folder per contender
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        for obs, action, reward, next_obs, terminated in random_transitions(buffer_size, 1):
            self.model.replay_buffer.add(obs, next_obs, action, reward, terminated, [{}])

    def step(self) -> int:
        self.model.train(gradient_steps=self.config.policy_freq, batch_size=self.config.batch_size)
        return self.config.policy_freq


class SacContender:
    """Our SAC with `seeds` batched seeds and a replay buffer of random transitions."""

    def __init__(self, config: SACConfig, seeds: int, buffer_size: int):
        obs, act = HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM
        bound = np.ones(act, dtype=np.float32)
        self.config = config
        self.agent = SAC(obs, act, -bound, bound, config, seed=0, n_seeds=seeds)
        self.buffer = ReplayBuffer(obs, act, buffer_size, n_seeds=seeds)
        for transition in random_transitions(buffer_size, seeds):
            self.buffer.add(*transition)

    def step(self) -> int:
        self.agent.train(self.buffer.sample(self.config.batch_size))
        return 1


class Sb3SacContender:
    """Stable-Baselines3's SAC with our nets and hyperparameters and the same random transitions."""

    def __init__(self, config: SACConfig, buffer_size: int):
        from stable_baselines3.common.logger import Logger

        env = make_raw_env(TD3_SETTING)  # only its spaces are used: HalfCheetah's dims
        self.config = config
        self.model = sb3_sac(config, env, buffer_size=buffer_size, seed=0)
        self.model.set_logger(Logger(folder=None, output_formats=[]))  # no outputs, no folder (see Sb3Contender)
        for obs, action, reward, next_obs, terminated in random_transitions(buffer_size, 1):
            self.model.replay_buffer.add(obs, next_obs, action, reward, terminated, [{}])

    def step(self) -> int:
        self.model.train(gradient_steps=1, batch_size=self.config.batch_size)
        return 1


def matmul_step(n: int = MATMUL_N, repeats: int = 8) -> Callable[[], float]:
    """A step of `repeats` fp32 [n, n] @ [n, n] matmuls into a preallocated output; returns its FLOP."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)

    def step() -> float:
        for _ in range(repeats):
            torch.mm(a, b, out=out)
        return 2.0 * n**3 * repeats

    return step


def analytic_update_flop(
    config: TD3Config, obs_dim: int = HALFCHEETAH_OBS_DIM, action_dim: int = HALFCHEETAH_ACTION_DIM
) -> float:
    """Matmul FLOP of one TD3 update of one seed, averaged over `policy_freq` updates (see TD3.train).

    A linear layer [B, i] -> [B, o] costs 2Bio forward, 2Bio for its weight gradient and 2Bio for
    its input gradient; no input gradient reaches the first layer of a net whose input needs none.
    Every update: target actor and twin target critics forward; twin critics forward and backward.
    Every `policy_freq`-th update: actor forward, critic 1 forward, critic 1 backward to its
    input only (its weights are frozen), actor backward. Biases, activations, Adam and the soft
    target updates are elementwise and not counted, nor is a Q head's input gradient: with one
    output it is an outer product, which the update computes elementwise (no sums).
    """
    b, h = config.batch_size, config.hidden

    def layers(n_in: int, n_out: int) -> list[tuple[int, int]]:
        return [(n_in, h), (h, h), (h, n_out)]

    def forward(net: list[tuple[int, int]]) -> float:
        return sum(2 * b * i * o for i, o in net)

    def backward(net: list[tuple[int, int]], *, weights: bool, input_grad_to_first: bool) -> float:
        weight_grads = forward(net) if weights else 0
        input_grads = forward([(i, o) for i, o in (net if input_grad_to_first else net[1:]) if o > 1])
        return weight_grads + input_grads

    actor, critic = layers(obs_dim, action_dim), layers(obs_dim + action_dim, 1)
    every_update = (
        forward(actor)  # target actor
        + 2 * forward(critic)  # twin target critics
        + 2 * forward(critic)  # twin critics
        + 2 * backward(critic, weights=True, input_grad_to_first=False)
    )
    actor_update = (
        forward(actor)
        + forward(critic)
        + backward(critic, weights=False, input_grad_to_first=True)
        + backward(actor, weights=True, input_grad_to_first=False)
    )
    return every_update + actor_update / config.policy_freq


def counted_update_flop(step: Callable[[], int]) -> float:
    """FLOP per update of one `step()`, by torch's FlopCounterMode (matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        updates = step()
    return counter.get_total_flops() / updates


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


def random_transitions(size: int, seeds: int) -> Iterator[tuple[np.ndarray, ...]]:
    """`size` random HalfCheetah-shaped transitions of `seeds` seeds, each array [seeds, ...]."""
    rng = np.random.default_rng(0)
    obs, act = HALFCHEETAH_OBS_DIM, HALFCHEETAH_ACTION_DIM
    for _ in range(size):
        yield (
            rng.standard_normal((seeds, obs), dtype=np.float32),
            rng.uniform(-1, 1, (seeds, act)).astype(np.float32),
            rng.standard_normal(seeds, dtype=np.float32),
            rng.standard_normal((seeds, obs), dtype=np.float32),
            rng.random(seeds) < 0.01,
        )


# --- machine facts ----------------------------------------------------------------------------


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def proc_cpuinfo() -> dict[str, str]:
    """The first CPU's fields in /proc/cpuinfo ({} where there is none)."""
    info: dict[str, str] = {}
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    return info


def cpu_isa(info: Mapping[str, str]) -> dict[str, Any]:
    """What sets this CPU's matmul rates: its model, family and model number (from `proc_cpuinfo`), torch's
    kernel level (AVX2, AVX512, ...), the extensions behind the fp32 and bf16 rates, the L2 size per core."""
    capabilities = cpu_capabilities()
    number = {key: int(info[key]) if info.get(key, "").isdigit() else None for key in ("cpu family", "model")}
    return {
        "cpu_model": info.get("model name") or platform.processor() or "unknown",
        "cpu_family": number["cpu family"],
        "cpu_model_number": number["model"],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **{flag: bool(capabilities.get(flag)) for flag in ("avx2", "avx512_f", "avx512_bf16", "amx_bf16")},
        "l2_cache_kib": capabilities.get("l2_cache_size", 0) // 1024 or None,
        "native_bf16": native_bf16("cpu"),
    }


def sb3_version() -> str | None:
    try:
        return importlib.metadata.version("stable-baselines3")
    except importlib.metadata.PackageNotFoundError:
        return None


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
    """A dict's scalar entries as key/value rows, then its dict entries as one row each; a scalar as itself."""
    if not isinstance(value, Mapping):
        return [fmt(value)]
    scalars = {key: v for key, v in value.items() if not isinstance(v, Mapping)}
    nested = {key: v for key, v in value.items() if isinstance(v, Mapping)}
    lines = table(["", "value"], [[key, fmt(v)] for key, v in scalars.items()]) if scalars else []
    if nested:
        columns = list(dict.fromkeys(key for row in nested.values() for key in row))
        rows = [[name, *(fmt(row.get(col, "")) for col in columns)] for name, row in nested.items()]
        lines += [""] * bool(lines) + table(["", *columns], rows)
    return lines


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
    kept = keep_freed_memory()  # as the stages run: SB3 and ours alike (the allocator section measures it)
    td3_rounds.cache_clear()  # every run measures afresh
    start = time.perf_counter()
    results = {}
    for name, measure in SECTIONS.items():
        section_start = time.perf_counter()
        results[name] = measure(budget)
        log(f"{name}: {time.perf_counter() - section_start:.1f} s")
    samples = td3_round_samples(budget)
    td3_rounds.cache_clear()  # frees the models
    results["machine"]["keeps_freed_memory"] = kept
    results["bench_wall_s"] = time.perf_counter() - start
    markdown = render_markdown(results)
    write_json(args.out / "benchmarks.json", {**results, "td3_round_samples": samples})
    write_text(args.out / "benchmarks.md", markdown)
    print(markdown)
    log(f"done in {results['bench_wall_s']:.1f} s; wrote {args.out}/benchmarks.json and benchmarks.md")


if __name__ == "__main__":
    main()
