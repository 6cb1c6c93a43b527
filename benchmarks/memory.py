"""Peak memory of every long stage, estimated from params (pipeline.memory), and measured beside the estimate.

    python -m benchmarks.memory                 # the estimate of every stage x setting at every profile
    python -m benchmarks.memory --measure       # + peak RSS of short meta-training runs whose replay fills up

The stages refuse to start when their estimate exceeds the machine's available memory; this command shows
what each profile needs before a long run. `--measure` runs stage meta_train (method mcat, one seed, a small
replay that fills several times over, the smoke budget otherwise) on every setting in a subprocess and
compares its peak RSS (ru_maxrss) with the stage's own estimate for those params.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from pipeline import memory
from pipeline.config import Params, load_params
from pipeline.envs import make_env
from pipeline.methods.registry import get_method

MiB = memory.MiB
MEASURE_CAPACITY = 400  # replay rows per task of a measured run: filled 5x over by MEASURE_STEPS
MEASURE_STEPS = 10_000  # env steps per seed of a measured run (2000 per task over 5 tasks)


def dims(params: Params, setting: str, task: object) -> tuple[int, int]:
    env = make_env(setting, task, definition=params.task_definition.value)
    return env.observation_space.shape[0], env.action_space.shape[0]


def estimates(params: Params) -> list[tuple[str, str, memory.Estimate]]:
    """(stage, setting, estimate) for every long stage of the params' DAG at its profile."""
    budget, rows = params.budget, []
    for setting, tasks in params.tasks.items():
        obs, act = dims(params, setting, tasks.source)
        rows.append(
            ("pretrain_source", setting, memory.td3_training("pretrain_source", obs, act, budget.pretrain_steps, 1))
        )
    for setting, spec in params.transfer.items():
        obs, act = dims(params, setting, spec.tasks[0])
        n, steps = len(spec.tasks), budget.transfer_pretrain_steps
        rows.append(("pretrain_tasks", setting, memory.td3_training("pretrain_tasks", obs, act, steps, n)))
        rows.append(("collect", setting, memory.collect(obs, act, budget.collect_steps, n)))
        rows.append(("train_translator", setting, memory.train_translator(obs, act, budget.collect_steps, n)))
    for setting in params.meta_train.settings:
        train = params.tasks[setting].train
        obs, act = dims(params, setting, train[0])
        seeds = budget.seeds if params.meta.batch_seeds else 1
        for method in params.meta_train.methods:
            spec = get_method(method)
            estimate = getattr(spec.load_trainer(), "estimate_memory", None)
            if estimate is not None:
                steps = max(1, budget.meta_steps // len(train))
                rows.append(
                    (f"meta_train {method}", setting, estimate(params, spec, obs, act, len(train), seeds, steps))
                )
    return rows


def measure(params_path: Path, setting: str) -> tuple[float, float]:
    """(peak RSS, estimate) in MiB of stage meta_train mcat on `setting` with a replay that fills up."""
    raw = OmegaConf.load(params_path)
    raw.profile = "smoke"
    raw.budgets.smoke.seeds = 1
    raw.budgets.smoke.meta_steps = MEASURE_STEPS
    raw.meta.replay_capacity = MEASURE_CAPACITY
    raw.meta_train.settings = [setting]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "params.yaml"
        OmegaConf.save(raw, path)
        params = load_params(path)
        command = [sys.executable, "-m", "stages.meta_train", setting, "mcat", "--params", str(path), "--root", folder,
                   "--no-progress"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"error: meta_train on {setting} failed: {process.stderr.read()[-2000:]}")
    train = params.tasks[setting].train
    obs, act = dims(params, setting, train[0])
    spec = get_method("mcat")
    steps = max(1, MEASURE_STEPS // len(train))
    estimate = spec.load_trainer().estimate_memory(params, spec, obs, act, len(train), 1, steps)
    return usage.ru_maxrss / 1024, estimate.total / MiB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--measure", action="store_true", help="also measure peak RSS of meta_train per setting")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    base = load_params(args.params)
    available = memory.available_bytes()
    print(f"available now: {available / MiB:.0f} MiB" if available else "available: unknown")
    results: dict = {"estimates": {}, "measured": {}}
    for profile in ("smoke", "quick", "default", "paper"):
        params = dataclasses.replace(base, profile=type(base.profile)(profile))
        print(f"\n## profile {profile}\n\n| stage | setting | estimate (MiB) | parts |\n|---|---|---|---|")
        for stage, setting, estimate in estimates(params):
            parts = ", ".join(f"{k} {v / MiB:.0f}" for k, v in estimate.parts.items())
            print(f"| {stage} | {setting} | {estimate.total / MiB:.0f} | {parts} |")
            results["estimates"].setdefault(profile, []).append([stage, setting, estimate.total / MiB])
    if args.measure:
        print("\n## measured: meta_train mcat, 1 seed, a replay of "
              f"{MEASURE_CAPACITY} rows per task filled by {MEASURE_STEPS} env steps\n")  # fmt: skip
        print("| setting | peak RSS (MiB) | estimate (MiB) | measured / estimate |\n|---|---|---|---|")
        for setting in base.tasks:
            peak, estimate = measure(args.params, setting)
            print(f"| {setting} | {peak:.0f} | {estimate:.0f} | {peak / estimate:.2f} |", flush=True)
            results["measured"][setting] = {"peak_rss_mib": peak, "estimate_mib": estimate}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
