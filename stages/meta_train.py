"""Stage meta_train: one meta-RL method on one setting's training tasks, the profile's seeds (paper 5.2, 5.3).

The seeds train as one seed-batched model, or with `meta.batch_seeds: false` one after another (each its own
resume state); either way seed k draws the same random streams, so the outputs agree.

Rewards delayed by the top-level `delay`, or by `--delay` (stage meta_delay, Table 4's other delays:
outputs under data/meta/delay-<delay>/ and reports/meta/delay-<delay>/ instead). Evaluation every
meta_eval_every env steps on every training and held-out test task (deterministic policy, context
inferred online). Writes reports/meta/<setting>/<method>/curve.csv (env_steps, method, seed, task,
split, dense_return, delayed_return), metrics.json (final test and train returns, mean ± standard error over seeds),
embeddings.csv (seed, task, z0..: context embeddings of segments from the final replay) and
data/meta/<setting>/<method>/ (agent and per-seed C, F, H).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from pipeline.agents.td3 import TD3, stack_seeds
from pipeline.allocator import keep_freed_memory
from pipeline.atomic import write_bytes, write_json
from pipeline.config import Params
from pipeline.envs import make_env
from pipeline.evaluation import summarize
from pipeline.guards import NonFiniteError
from pipeline.meta.mcat import METHODS, MetaTrainer, SeedModels, build_seed_models, evaluate_contextual
from pipeline.meta.resume import load_meta_state, save_meta_state
from pipeline.seeding import stream_generator, stream_seed
from pipeline.transfer.windows import Windows
from stages.common import (
    argument_parser,
    check_setting_or_exit,
    load_params_or_exit,
    note_if_resume_ignored,
    resume_folder,
    run_fingerprint,
    write_csv,
)

CURVE_HEADER = ("env_steps", "method", "seed", "task", "split", "dense_return", "delayed_return")
EMBEDDING_HEADER = ("seed", "task")
EMBEDDING_SEGMENTS = 50  # context segments per (seed, task) in embeddings.csv (App. D.5's scatter)
EVAL_SEED_OFFSET = 70_000  # evaluation resets apart from training's


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="task family, e.g. halfcheetah-armature")
    parser.add_argument("method", help=f"one of {', '.join(METHODS)}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--delay", type=int, help="reward delay instead of params' `delay` (stage meta_delay)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    params = load_params_or_exit(args.params)
    if args.delay is not None:
        if args.delay < 0 or args.delay == params.delay:
            raise SystemExit(f"error: --delay {args.delay}: must be >= 0 and not params' delay (meta_train runs that)")
        params = dataclasses.replace(params, delay=args.delay)
    check_setting_or_exit(params, args.setting)
    if args.method not in METHODS:
        raise SystemExit(f"error: method {args.method!r} unknown; allowed: {', '.join(METHODS)}")

    budget, tasks = params.budget, params.tasks[args.setting]
    k, n_train = budget.seeds, len(tasks.train)
    root = Path(args.root)
    runs = "meta" if args.delay is None else f"meta/delay-{args.delay}"
    out_dir = root / "data" / runs / args.setting / args.method
    report_dir = root / "reports" / runs / args.setting / args.method
    run_name = f"{args.setting}-{args.method}" + ("" if args.delay is None else f"-delay{args.delay}")
    groups = [list(range(k))] if params.meta.batch_seeds else [[s] for s in range(k)]
    resumes = [
        resume_folder(root, "meta_train", run_name + ("" if len(groups) == 1 else f"-seed{g[0]}")) for g in groups
    ]
    fingerprint = run_fingerprint(params, "meta_train", args.setting, args.method)
    for resume in resumes:
        note_if_resume_ignored(resume, fingerprint)
    iterations = max(1, budget.meta_steps // n_train)  # loop steps: each steps every training task once
    how = "batched" if len(groups) == 1 else "one at a time"
    print(f"meta_train {args.setting} {args.method}: {k} seed(s) {how}, {iterations * n_train} env steps each, "
          f"delay {params.delay}")  # fmt: skip

    results: list[SeedsResult] = []
    started = time.perf_counter()
    for seeds, resume in zip(groups, resumes, strict=True):
        earlier = [row for r in results for row in r.rows]
        try:
            result = train_seeds(
                params, args, seeds, iterations, resume, fingerprint, report_dir, earlier, len(groups) > 1
            )
        except NonFiniteError as err:
            print(
                f"error: meta_train {args.setting} {args.method}: {err}; resume state kept: {resume}", file=sys.stderr
            )
            raise SystemExit(3) from None
        results.append(result)
    wall = time.perf_counter() - started
    rows = sorted((row for r in results for row in r.rows), key=curve_order)
    agent = stack_seeds([r.agent for r in results])
    agent.save(out_dir / "agent.pt", {"setting": args.setting, "method": args.method, "tasks": list(tasks.train)})
    buffer = io.BytesIO()
    models = [seed for r in results for seed in r.models]
    torch.save([{name: m.state_dict() for name, m in seed._asdict().items()} for seed in models], buffer)
    write_bytes(out_dir / "models.pt", buffer.getvalue())

    write_csv(report_dir / "embeddings.csv", EMBEDDING_HEADER + tuple(f"z{j}" for j in range(params.context.z_dim)),
              [row for r in results for row in r.embeddings])  # fmt: skip
    final = [r for r in rows if r[0] == rows[-1][0]]
    summary = {}
    for split in ("train", "test"):
        per_seed = np.array(
            [np.mean([r[5] for r in final if r[2] == params.seed + s and r[4] == split]) for s in range(k)]
        )
        stats = summarize(per_seed)
        summary[split] = {"mean": stats.mean, "stderr": stats.stderr, "per_seed": per_seed.tolist()}
    write_json(
        report_dir / "metrics.json",
        {
            "setting": args.setting,
            "method": args.method,
            "profile": params.profile.value,
            "delay": params.delay,
            "seeds": k,
            "batch_seeds": params.meta.batch_seeds,
            "env_steps": rows[-1][0],
            "eval_episodes": budget.meta_eval_episodes,
            "final_test_return": summary["test"],
            "final_train_return": summary["train"],
            "transferred_episodes": sum(r.transferred_episodes for r in results),
            "wall_seconds": round(wall, 1),
        },
    )
    for resume in resumes:
        shutil.rmtree(resume, ignore_errors=True)
    test = summary["test"]
    print(
        f"meta_train {args.setting} {args.method}: test return {test['mean']:.1f} ± {test['stderr']:.1f} ({wall:.0f} s)"
    )


class SeedsResult(NamedTuple):
    """What the stage keeps of a trainer once its seeds are trained."""

    agent: TD3
    models: list[SeedModels]
    rows: list[tuple]  # curve.csv rows
    embeddings: list[tuple]  # embeddings.csv rows
    transferred_episodes: int


def curve_order(row: tuple) -> tuple:
    """curve.csv's order (env steps, split, seed, task): the same whether seeds ran batched or not."""
    return row[0], row[4] == "test", row[2], row[3]


def train_seeds(
    params: Params,
    args: argparse.Namespace,
    seeds: list[int],
    iterations: int,
    resume: Path,
    fingerprint: str,
    report_dir: Path,
    earlier_rows: list[tuple],
    keep_finished_state: bool,
) -> SeedsResult:
    """Train the run's seeds `seeds` (indices, consecutive) as one batched trainer, resuming from `resume`.
    Evaluations rewrite curve.csv with `earlier_rows` (other seeds' finished rows) and this trainer's.
    `keep_finished_state`: checkpoint at the end too (the stage removes the states once all seeds are done)."""
    budget, tasks, k = params.budget, params.tasks[args.setting], len(seeds)
    n_train = len(tasks.train)

    def grid(task_list: list) -> list[list]:
        steps, definition = budget.max_episode_steps, params.task_definition.value
        return [
            [
                make_env(args.setting, t, delay=params.delay, max_episode_steps=steps, definition=definition)
                for t in task_list
            ]
            for _ in range(k)
        ]

    envs, train_eval, test_eval = grid(tasks.train), grid(tasks.train), grid(tasks.test)
    space = envs[0][0].action_space
    obs_dim, action_dim = envs[0][0].observation_space.shape[0], space.shape[0]
    agent = TD3(obs_dim, action_dim, space.low, space.high, params.td3, context_dim=params.context.z_dim,
                seed=params.seed + seeds[0], n_seeds=k)  # fmt: skip
    models = []
    for s in seeds:
        torch.manual_seed(stream_seed(params.seed + s, "meta.models"))  # C, F, H init: apart from TD3's streams
        models.append(build_seed_models(obs_dim, action_dim, space.low, space.high, params.context,
                                        params.forward_model, params.translator))  # fmt: skip
    trainer = MetaTrainer(
        agent,
        models,
        envs,
        METHODS[args.method],
        meta=dataclasses.replace(params.meta, replay_capacity=min(params.meta.replay_capacity, iterations)),
        context=params.context,
        forward=params.forward_model,
        translator=params.translator,
        sil=params.sil,
        retrain_every=max(1, budget.meta_retrain_every // n_train),
        retrain_updates=budget.meta_retrain_updates,
        seed=params.seed,
        first_seed=seeds[0],
    )
    rows: list[tuple] = []

    def evaluate(step: int) -> None:
        env_steps = step * n_train
        for split, grid_envs in (("train", train_eval), ("test", test_eval)):
            dense, delayed = evaluate_contextual(agent, models, grid_envs, budget.meta_eval_episodes,
                                                 params.seed + EVAL_SEED_OFFSET, params.context.history)  # fmt: skip
            for s in range(k):
                for i in range(dense.shape[1]):
                    rows.append((env_steps, args.method, params.seed + seeds[s], i, split, dense[s, i], delayed[s, i]))
        write_csv(report_dir / "curve.csv", CURVE_HEADER, sorted(earlier_rows + rows, key=curve_order))

    extra = load_meta_state(resume, trainer, fingerprint=fingerprint)
    if extra is not None:
        rows[:] = [tuple(r) for r in extra["rows"]]
        print(f"meta_train {args.setting} {args.method}: seeds {seeds}: resuming at env step {trainer.step * n_train}")
    resumed_at = trainer.step

    def checkpoint() -> None:
        save_meta_state(resume, trainer, fingerprint=fingerprint, extra={"rows": rows})

    trainer.run(
        iterations,
        start_steps=budget.meta_start_steps // n_train,
        eval_every=max(1, budget.meta_eval_every // n_train),
        evaluate=evaluate,
        progress=not args.no_progress,
        checkpoint=checkpoint,
        checkpoint_every=max(1, budget.checkpoint_every // n_train) if budget.checkpoint_every else 0,
    )
    if keep_finished_state and trainer.step > resumed_at:
        checkpoint()  # other seeds are still to train: a kill then does not lose these
    embeddings = embedding_rows(trainer, params.seed, seeds[0])
    return SeedsResult(agent, models, rows, embeddings, trainer.transferred_episodes)


def embedding_rows(trainer: MetaTrainer, base_seed: int, first_seed: int = 0) -> list[tuple]:
    """z = C(segment) of EMBEDDING_SEGMENTS context segments per seed and training task, from the final replay;
    the trainer's seed s is the run's seed `first_seed + s`."""
    rows = []
    for s, models in enumerate(trainer.models, start=first_seed):
        generator = stream_generator(base_seed + s, "meta.embedding_segments")
        for i in range(trainer.n_tasks):
            try:
                windows = Windows(trainer.replay.task_data(s - first_seed, i), trainer.context.history, 1)
            except ValueError:
                continue  # no episode longer than the context yet
            with torch.no_grad():
                z = models.encoder(windows.contexts(EMBEDDING_SEGMENTS, generator))
            rows += [(base_seed + s, i, *(f"{v:.5g}" for v in row)) for row in z.tolist()]
    return rows


if __name__ == "__main__":
    main()
