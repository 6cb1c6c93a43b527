"""Stage meta_train: one meta-RL method on one setting's training tasks, the profile's seeds (paper 5.2, 5.3).

Works for every method of the registry (pipeline.methods): the method builds a learner for a group of seeds
(`protocol.MethodTrainer`), this stage drives it, evaluates it and keeps its resume states. Its seeds train as
one group (MCAT: one seed-batched model) or, as the method decides (MCAT's `meta.batch_seeds: false`), one
group after another, each with its own resume state; seed k draws the same random streams either way.

Rewards delayed by the top-level `delay`, or by `--delay` (stage meta_delay, Table 4's other delays:
outputs under data/meta/delay-<delay>/ and reports/meta/delay-<delay>/ instead). Evaluation every
meta_eval_every env steps on every training and held-out test task (the method's evaluation policy).
Writes reports/meta/<setting>/<method>/curve.csv (env_steps, method, seed, task, split, dense_return,
delayed_return), metrics.json (final test and train returns, mean ± standard error over seeds, episode and
transfer counts, the split of wall time between training and evaluation, and the method's own fields),
episodes.csv (every finished training episode: who acted, how chosen, its return; pipeline.methods.protocol
EPISODE_COLUMNS), transfers.csv (the transferred ones: trials and follows), embeddings.csv (seed, task, then
the method's embedding columns, e.g. MCAT's context z0..) and data/meta/<setting>/<method>/ (the method's
checkpoints, e.g. MCAT's agent.pt and models.pt).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium
import numpy as np
from tqdm.auto import tqdm

from pipeline.allocator import keep_freed_memory
from pipeline.atomic import write_json
from pipeline.config import Params
from pipeline.envs import make_env
from pipeline.evaluation import summarize
from pipeline.guards import NonFiniteError
from pipeline.methods.protocol import EPISODE_COLUMNS, MetaLearner, Run, seed_groups
from pipeline.methods.registry import MethodSpec, get_method, method_names
from pipeline.resume import ResumeFolder
from stages.common import (
    argument_parser,
    check_memory_or_exit,
    check_setting_or_exit,
    load_params_or_exit,
    open_resume_or_exit,
    resume_folder,
    run,
    run_fingerprint,
    write_csv,
)

CURVE_HEADER = ("env_steps", "method", "seed", "task", "split", "dense_return", "delayed_return")
EMBEDDING_HEADER = ("seed", "task")
EVAL_SEED_OFFSET = 70_000  # evaluation resets apart from training's
PROGRESS_CHUNK = 50  # loop steps between progress-bar updates (chunking does not change the run)
STAGE_FILE = "stage.json"  # the stage's part of a resume state (curve rows); the method's is in METHOD_DIR
METHOD_DIR = "method"


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="task family, e.g. halfcheetah-armature")
    parser.add_argument("method", help="a registered method, e.g. mcat")
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
    if args.method not in method_names():
        raise SystemExit(f"error: method {args.method!r} unknown; allowed: {', '.join(method_names())}")
    spec = get_method(args.method)
    trainer = spec.load_trainer()

    budget, tasks = params.budget, params.tasks[args.setting]
    k, n_train = budget.seeds, len(tasks.train)
    root = Path(args.root)
    runs = "meta" if args.delay is None else f"meta/delay-{args.delay}"
    out_dir = root / "data" / runs / args.setting / args.method
    report_dir = root / "reports" / runs / args.setting / args.method
    run_name = f"{args.setting}-{args.method}" + ("" if args.delay is None else f"-delay{args.delay}")
    groups = seed_groups(trainer, params, k)
    iterations = max(1, budget.meta_steps // n_train)  # loop steps: each steps every training task once
    fingerprint = run_fingerprint(params, "meta_train", args.setting, args.method)
    checkpoint_every = max(1, budget.checkpoint_every // n_train) if budget.checkpoint_every else 0
    resumes = [
        ResumeFolder(
            resume_folder(root, "meta_train", run_name + ("" if len(groups) == 1 else f"-seed{g[0]}")),
            fingerprint=fingerprint,
            name=f"meta_train {args.setting} {args.method}" + ("" if len(groups) == 1 else f" seeds {g}"),
            unit="env step",
            total=iterations * n_train,
            every=checkpoint_every * n_train,
        )
        for g in groups
    ]
    estimate_memory = getattr(trainer, "estimate_memory", None)  # optional part of a method's trainer
    if estimate_memory is not None:
        probe = make_env(args.setting, tasks.train[0], definition=params.task_definition.value)
        dims = probe.observation_space.shape[0], probe.action_space.shape[0]
        check_memory_or_exit(estimate_memory(params, spec, *dims, n_train, max(len(g) for g in groups), iterations))
    how = "batched" if len(groups) == 1 else "one group at a time"
    print(f"meta_train {args.setting} {args.method}: {k} seed(s) {how}, {iterations * n_train} env steps each, "
          f"delay {params.delay}")  # fmt: skip

    results: list[SeedsResult] = []
    started = time.perf_counter()
    with ExitStack() as held:  # every group's resume folder is this process's until the run is written
        for resume in resumes:
            held.enter_context(open_resume_or_exit(resume))
        for seeds, resume in zip(groups, resumes, strict=True):
            earlier = [row for r in results for row in r.rows]
            earlier_episodes = [row for r in results for row in r.episodes]
            try:
                result = train_seeds(
                    params, spec, args, seeds, iterations, resume, report_dir, earlier, earlier_episodes,
                    len(groups) > 1,
                )  # fmt: skip
            except NonFiniteError as err:
                where = f"{args.setting} {args.method}"
                print(f"error: meta_train {where}: {err}; resume state kept: {resume.folder}", file=sys.stderr)
                raise SystemExit(3) from None
            results.append(result)
        wall = time.perf_counter() - started
        rows = sorted((row for r in results for row in r.rows), key=curve_order)
        meta = {"setting": args.setting, "method": args.method, "tasks": list(tasks.train)}
        out_dir.mkdir(parents=True, exist_ok=True)
        extra = trainer.finish([r.learner for r in results], out_dir, meta)

        columns = results[0].embedding_columns
        write_csv(report_dir / "embeddings.csv", EMBEDDING_HEADER + tuple(columns),
                  [row for r in results for row in r.embeddings])  # fmt: skip
        summary = final_returns(rows, params.seed, k)
        episodes = [row for r in results for row in r.episodes]
        write_episode_logs(report_dir, episodes)
        eval_seconds = sum(r.eval_seconds for r in results)
        write_json(
            report_dir / "metrics.json",
            {
                "setting": args.setting,
                "method": args.method,
                "profile": params.profile.value,
                "delay": params.delay,
                "seeds": k,
                "env_steps": rows[-1][0],
                "eval_episodes": budget.meta_eval_episodes,
                "final_test_return": summary["test"],
                "final_train_return": summary["train"],
                "wall_seconds": round(wall, 1),
                "eval_seconds": round(eval_seconds, 1),  # evaluation's part of wall_seconds (this process's)
                **episode_counts(episodes),
                **extra,
            },
        )
        for resume in resumes:
            resume.remove()
    test = summary["test"]
    print(
        f"meta_train {args.setting} {args.method}: test return {test['mean']:.1f} ± {test['stderr']:.1f} ({wall:.0f} s)"
    )


class SeedsResult(NamedTuple):
    """What the stage keeps of a learner once its seeds are trained."""

    learner: MetaLearner
    rows: list[tuple]  # curve.csv rows
    embedding_columns: list[str]  # embeddings.csv's columns after (seed, task)
    embeddings: list[tuple]  # embeddings.csv rows
    episodes: list[tuple]  # episodes.csv rows
    eval_seconds: float  # spent evaluating in this process


def learner_episodes(learner: MetaLearner) -> list[tuple]:
    """The learner's episode log (protocol.EPISODE_COLUMNS), [] for a learner that keeps none."""
    episodes = getattr(learner, "finished_episodes", None)
    return [] if episodes is None else episodes()


def write_episode_logs(report_dir: Path, episodes: list[tuple]) -> None:
    """episodes.csv (every finished training episode) and transfers.csv (those a transferred policy acted in)."""
    ordered = sorted(episodes, key=lambda row: (row[0], row[1], row[2]))
    write_csv(report_dir / "episodes.csv", EPISODE_COLUMNS, ordered)
    write_csv(report_dir / "transfers.csv", EPISODE_COLUMNS, [row for row in ordered if row[3] != "learned"])


def episode_counts(episodes: list[tuple]) -> dict[str, Any]:
    """Training episodes after the random start, and how many of them a transferred policy acted in."""
    kinds = [row[4] for row in episodes if row[4] != "random"]
    transferred = sum(kind in ("trial", "follow") for kind in kinds)
    return {
        "training_episodes": len(kinds),
        "trial_episodes": kinds.count("trial"),
        "followed_episodes": kinds.count("follow"),
        "transferred_share": transferred / len(kinds) if kinds else 0.0,
    }


def curve_order(row: tuple) -> tuple:
    """curve.csv's order (env steps, split, seed, task): the same whether seeds ran batched or not."""
    return row[0], row[4] == "test", row[2], row[3]


def final_returns(rows: list[tuple], base_seed: int, seeds: int) -> dict[str, dict[str, Any]]:
    """Per split, the last evaluation's dense return: mean over tasks per seed, then mean ± s.e. over seeds."""
    final = [r for r in rows if r[0] == rows[-1][0]]
    summary = {}
    for split in ("train", "test"):
        per_seed = np.array(
            [np.mean([r[5] for r in final if r[2] == base_seed + s and r[4] == split]) for s in range(seeds)]
        )
        stats = summarize(per_seed)
        summary[split] = {"mean": stats.mean, "stderr": stats.stderr, "per_seed": per_seed.tolist()}
    return summary


def env_grid(params: Params, setting: str, tasks: list, seeds: int) -> list[list[gymnasium.Env]]:
    """envs[k][i]: an env of tasks[i] for each of `seeds` seeds, rewards delayed by params' delay."""
    steps, definition = params.budget.max_episode_steps, params.task_definition.value
    return [
        [make_env(setting, t, delay=params.delay, max_episode_steps=steps, definition=definition) for t in tasks]
        for _ in range(seeds)
    ]


def train_seeds(
    params: Params,
    spec: MethodSpec,
    args: argparse.Namespace,
    seeds: list[int],
    iterations: int,
    resume: ResumeFolder,
    report_dir: Path,
    earlier_rows: list[tuple],
    earlier_episodes: list[tuple],
    keep_finished_state: bool,
) -> SeedsResult:
    """Train the run's seeds `seeds` (indices, consecutive) as one learner, resuming from `resume`.
    Evaluations rewrite curve.csv with `earlier_rows` (other seeds' finished rows) and this learner's.
    `keep_finished_state`: checkpoint at the end too (the stage removes the states once all seeds are done)."""
    budget, tasks, k = params.budget, params.tasks[args.setting], len(seeds)
    n_train = len(tasks.train)
    envs = env_grid(params, args.setting, tasks.train, k)
    # training and test tasks evaluated together: one batched policy call per step for every task and seed
    evaluation = env_grid(params, args.setting, [*tasks.train, *tasks.test], k)
    learner = spec.load_trainer().build(Run(params, spec, args.setting, list(seeds), envs, iterations))
    rows: list[tuple] = []
    eval_seconds = 0.0

    def evaluate(step: int) -> None:
        nonlocal eval_seconds
        started = time.perf_counter()
        env_steps = step * n_train
        dense, delayed = learner.evaluate(evaluation, budget.meta_eval_episodes, params.seed + EVAL_SEED_OFFSET)
        for split, columns in (("train", range(n_train)), ("test", range(n_train, dense.shape[1]))):
            for s in range(k):
                for i, c in enumerate(columns):
                    rows.append((env_steps, args.method, params.seed + seeds[s], i, split, dense[s, c], delayed[s, c]))
        write_csv(report_dir / "curve.csv", CURVE_HEADER, sorted(earlier_rows + rows, key=curve_order))
        write_episode_logs(report_dir, earlier_episodes + learner_episodes(learner))
        eval_seconds += time.perf_counter() - started

    def read(folder: Path) -> list[tuple]:
        learner.load_state(folder / METHOD_DIR)
        return [tuple(r) for r in json.loads((folder / STAGE_FILE).read_text())["rows"]]

    def write(folder: Path) -> None:
        (folder / METHOD_DIR).mkdir()
        learner.save_state(folder / METHOD_DIR)
        (folder / STAGE_FILE).write_text(json.dumps({"rows": rows}))

    def checkpoint() -> None:
        resume.save(write, position=learner.step * n_train)

    saved_rows = resume.load(read)
    if saved_rows is not None:
        rows[:] = saved_rows
    resumed_at = learner.step
    eval_every = max(1, budget.meta_eval_every // n_train)
    checkpoint_every = max(1, budget.checkpoint_every // n_train) if budget.checkpoint_every else 0
    if learner.step == 0:
        evaluate(0)
    bar = tqdm(total=iterations, initial=learner.step, disable=args.no_progress, unit="step", dynamic_ncols=True,
               mininterval=1)  # fmt: skip
    while learner.step < iterations:
        # up to the next evaluation, checkpoint or bar update: the learner runs the same steps in any chunks
        due = [iterations, (learner.step // eval_every + 1) * eval_every, learner.step + PROGRESS_CHUNK]
        if checkpoint_every:
            due.append((learner.step // checkpoint_every + 1) * checkpoint_every)
        before = learner.step
        learner.train(min(due) - learner.step)
        step = learner.step
        if step % eval_every == 0 or step == iterations:
            evaluate(step)
        if checkpoint_every and step % checkpoint_every == 0 and step < iterations:
            checkpoint()
        resume.progress(step * n_train)
        bar.update(step - before)
    bar.close()
    if keep_finished_state and learner.step > resumed_at:
        checkpoint()  # other seeds are still to train: a kill then does not lose these
    columns, embeddings = learner.embeddings()
    return SeedsResult(learner, rows, columns, embeddings, learner_episodes(learner), eval_seconds)


if __name__ == "__main__":
    run(main)
