"""Learning equivalence: does the fast TD3 core learn like an independent plain TD3?

`make bench-learning` trains, on HalfCheetah (the halfcheetah-armature source task, dense
reward), with the same budget, seeds and evaluation protocol:
  - ours, fp32, the seeds batched into one model;
  - ours, bf16 autocast, the seeds batched;
  - Stable-Baselines3 TD3 (the plain reference; same nets, lr, batch, noise, start steps).
It writes reports/learning_equivalence.json, .md and reports/figures/learning_equivalence.png
(mean ± standard error over seeds). Defaults match the `default` profile's pretraining budget.
`--variants` runs a subset (e.g. one per process, each with OMP_NUM_THREADS=1) and `--merge`
combines the learning_equivalence.json of such runs into one report; runs of one variant with
other seeds (`--seed 3` for seeds 3, 4, 5) pool into one variant of more seeds.
A variant matches its reference (fp32 vs SB3, bf16 vs fp32) when the difference of final mean
returns is within one standard error of that difference (sqrt(se_a² + se_b²)).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks.sb3_reference import sb3_td3
from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import Precision, TD3Config
from pipeline.allocator import keep_freed_memory
from pipeline.atomic import atomic_path, write_json, write_text
from pipeline.envs import make_env
from pipeline.evaluation import evaluate_policy, standard_error, summarize
from pipeline.hardware import native_bf16
from pipeline.training import evaluation_seed, train_td3

SETTING, TASK = "halfcheetah-armature", 0.1
Curves = list[list[float]]  # [seed][evaluation] mean returns


def train_ours(config: TD3Config, args: argparse.Namespace) -> Curves:
    envs = [make_env(SETTING, TASK) for _ in range(args.seeds)]
    eval_envs = [make_env(SETTING, TASK) for _ in range(args.seeds)]
    space = envs[0].action_space
    obs_dim = envs[0].observation_space.shape[0]
    agent = TD3(obs_dim, space.shape[0], space.low, space.high, config, seed=args.seed, n_seeds=args.seeds)
    curves = train_td3(
        agent,
        envs,
        eval_envs,
        steps=args.steps,
        start_steps=args.start_steps,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
    )
    return [[p.mean_return for p in curve] for curve in curves]


def train_sb3(config: TD3Config, args: argparse.Namespace) -> Curves:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    curves = []
    for k in range(args.seeds):
        seed = args.seed + k
        env, eval_env = make_env(SETTING, TASK), make_env(SETTING, TASK)
        action_dim = env.action_space.shape[0]
        model = sb3_td3(
            config,
            env,
            buffer_size=args.steps,
            seed=seed,
            learning_starts=args.start_steps,
            action_noise=NormalActionNoise(np.zeros(action_dim), config.expl_noise * np.ones(action_dim)),
        )
        curve: list[float] = []

        def evaluate(model=model, eval_env=eval_env, seed: int = seed, curve: list[float] = curve) -> None:
            policy = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
            curve.append(evaluate_policy(policy, eval_env, args.eval_episodes, evaluation_seed(seed)).mean)

        class EvalEvery(BaseCallback):
            def _on_step(self) -> bool:
                if self.num_timesteps % args.eval_every == 0:
                    evaluate()
                return True

        evaluate()
        model.learn(total_timesteps=args.steps, callback=EvalEvery())
        print(f"sb3 seed {seed}: final {curve[-1]:.1f}", file=sys.stderr)
        curves.append(curve)
    return curves


VARIANTS = ("sb3_fp32", "ours_fp32_batched", "ours_bf16_batched")
# (variant, reference): the fast core against an independent plain TD3, and bf16 against fp32
COMPARISONS = (
    ("ours_fp32_batched", "sb3_fp32"),
    ("ours_bf16_batched", "ours_fp32_batched"),
    ("ours_bf16_batched", "sb3_fp32"),
)


def final_stats(curves: Curves) -> dict[str, object]:
    final = summarize([c[-1] for c in curves])
    return {"final_mean": final.mean, "final_stderr": final.stderr, "final_per_seed": [c[-1] for c in curves]}


def compare(curves: Curves, reference: Curves) -> dict[str, float | bool]:
    """Difference of final mean returns, its standard error, and whether it is within one."""
    final, ref = summarize([c[-1] for c in curves]), summarize([c[-1] for c in reference])
    diff, se_diff = final.mean - ref.mean, float(np.hypot(final.stderr, ref.stderr))
    return {"diff": diff, "stderr_of_diff": se_diff, "within_stderr": bool(abs(diff) <= se_diff)}


def plot(path: Path, steps: Sequence[int], runs: dict[str, Curves], title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curves in runs.items():
        values = np.asarray(curves)
        mean = values.mean(0)
        se = standard_error(values)
        ax.plot(steps, mean, label=name)
        ax.fill_between(steps, mean - se, mean + se, alpha=0.25)
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return (dense)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--start-steps", type=int, default=5_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON", help="combine earlier runs' results")
    args = parser.parse_args(argv)
    keep_freed_memory()
    if args.merge:
        write_reports(args.out, merge_results([json.loads(path.read_text()) for path in args.merge]))
        return

    if "ours_bf16_batched" in args.variants and not native_bf16("cpu"):
        print(
            "note: this CPU has no native bf16 matmuls (AVX-512 BF16 or AMX), so ours_bf16_batched runs 30-40x "
            "slower than fp32 (hours at the default budget); `--variants sb3_fp32 ours_fp32_batched` leaves it out",
            file=sys.stderr,
        )
    base = TD3Config()
    variants = {
        "sb3_fp32": lambda: train_sb3(base, args),
        "ours_fp32_batched": lambda: train_ours(base, args),
        "ours_bf16_batched": lambda: train_ours(dataclasses.replace(base, precision=Precision.bf16), args),
    }
    runs, seconds = {}, {}
    for name in args.variants:
        print(f"{name}: {args.seeds} seeds x {args.steps} steps", file=sys.stderr)
        start = time.perf_counter()
        runs[name] = variants[name]()
        seconds[name] = round(time.perf_counter() - start, 1)

    steps = [0, *range(args.eval_every, args.steps + 1, args.eval_every)]
    if steps[-1] != args.steps:
        steps.append(args.steps)
    budget = (
        f"HalfCheetah-v5 (armature 0.1), {args.steps} steps, {args.seeds} seeds, {args.eval_episodes} eval episodes"
    )
    seeds = {name: list(range(args.seed, args.seed + args.seeds)) for name in runs}
    results = {"budget": budget, "env_steps": steps, "curves": runs, "seeds": seeds, "wall_seconds": seconds}
    write_reports(args.out, results)


def merge_results(parts: Sequence[dict]) -> dict:
    """One results dict from runs at the same budget (but their seed counts) and evaluation steps: runs of
    different variants, or of one variant with other seeds (`--seed`), whose curves are pooled in seed order."""
    first = parts[0]
    for part in parts[1:]:
        for key in ("budget", "env_steps"):
            if _comparable(part, key) != _comparable(first, key):
                raise ValueError(f"cannot merge runs with different '{key}': {first[key]!r} vs {part[key]!r}")
    by_seed: dict[str, dict[int, list[float]]] = {}
    seconds: dict[str, float] = {}
    for part in parts:
        for name, runs in part["curves"].items():
            pooled = by_seed.setdefault(name, {})
            seeds = part.get("seeds", {}).get(name, range(len(runs)))  # runs before the key: seeds 0, 1, ...
            for seed, curve in zip(seeds, runs, strict=True):
                if seed in pooled:
                    raise ValueError(f"variant '{name}' has seed {seed} in more than one merged run")
                pooled[seed] = curve
            seconds[name] = round(seconds.get(name, 0.0) + part["wall_seconds"][name], 1)
    seeds = {name: sorted(pooled) for name, pooled in by_seed.items()}
    counts = sorted({len(s) for s in seeds.values()})
    if len(counts) != 1:
        raise ValueError(f"the merged variants have different seed counts: { {n: len(s) for n, s in seeds.items()} }")
    return {
        "budget": re.sub(r"\d+ seeds", f"{counts[0]} seeds", first["budget"]),
        "env_steps": first["env_steps"],
        "curves": {name: [by_seed[name][seed] for seed in seeds[name]] for name in by_seed},
        "seeds": seeds,
        "wall_seconds": seconds,
    }


def _comparable(part: dict, key: str) -> object:
    """`part[key]`, its budget's seed count left out (runs of other seeds pool)."""
    return re.sub(r"\d+ seeds", "N seeds", part[key]) if key == "budget" else part[key]


def write_reports(out: Path, results: dict) -> None:
    """learning_equivalence.json, .md and the figure, from the curves in `results`."""
    runs, seconds = results["curves"], results["wall_seconds"]
    results = {
        **results,
        "final": {name: final_stats(curves) for name, curves in runs.items()},
        "comparisons": [
            {"variant": v, "reference": r, **compare(runs[v], runs[r])}
            for v, r in COMPARISONS
            if v in runs and r in runs
        ],
    }
    write_json(out / "learning_equivalence.json", results)
    finals = [
        f"| {name} | {f['final_mean']:.1f} ± {f['final_stderr']:.1f} | {seconds[name]} |"
        for name, f in results["final"].items()
    ]
    comparisons = [
        f"| {c['variant']} | {c['reference']} | {c['diff']:+.1f} ± {c['stderr_of_diff']:.1f} | {c['within_stderr']} |"
        for c in results["comparisons"]
    ]
    table = "\n".join(
        [
            "# Learning equivalence",
            "",
            f"Budget: {results['budget']}.",
            "Written by benchmarks/learning.py; `make bench-learning` runs the default budget.",
            "",
            "| variant | final return (mean ± s.e. over seeds) | wall s |",
            "|---|---|---|",
            *finals,
            "",
            "| variant | reference | difference of final means ± its s.e. | within one s.e. |",
            "|---|---|---|---|",
            *comparisons,
            "",
            "![curves](figures/learning_equivalence.png)",
            "",
        ]
    )
    write_text(out / "learning_equivalence.md", table)
    plot(out / "figures" / "learning_equivalence.png", results["env_steps"], runs, results["budget"])
    print(table)


if __name__ == "__main__":
    main()
