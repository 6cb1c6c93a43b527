"""Stage evaluate_transfer: source vs transferred policies on target tasks (paper Table 1, Fig. 5).

Table 1 (the `pair`): on the target task, the source task's good policy as is, through our
translator and through the Zhang et al. baseline. Fig. 5: for every (source j, target i) of the
setting's tasks, policy j as is and through the multi-task translator H(s, π_j(s), z(j), z(i)).
Dense returns of deterministic policies; each seed k evaluates its own translators over
transfer_eval_episodes episodes (resets seeded alike for every policy, so the comparison is
paired); results are mean ± standard error over seeds. Writes reports/metrics/transfer_<setting>.json
and reports/transfer/<setting>/returns.csv (one row per seed, experiment, source, target, policy).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.allocator import keep_freed_memory
from pipeline.atomic import write_json
from pipeline.evaluation import ReturnStats, evaluate_policies, paired_improvement_pct, summarize
from pipeline.transfer.checkpoint import build_models, load_models
from pipeline.transfer.policy import Route, routed_policy
from stages.common import argument_parser, load_params_or_exit, run, write_csv
from stages.transfer_common import policies_path, task_envs, task_policies, transfer_spec_or_exit, translators_path

RETURNS_HEADER = ("experiment", "seed", "source_task", "target_task", "policy", "mean_return")
EVAL_SEED_OFFSET = 50_000  # evaluation resets never reuse the collection's or pretraining's seeds


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="a setting of params 'transfer', e.g. halfcheetah-armature")
    args = parser.parse_args(argv)
    keep_freed_memory()
    params = load_params_or_exit(args.params)
    spec = transfer_spec_or_exit(params, args.setting)
    root, tasks, budget = Path(args.root), list(spec.tasks), params.budget
    n_tasks, seeds, episodes = len(tasks), budget.seeds, budget.transfer_eval_episodes
    probe = task_envs(params, args.setting, tasks[:1])[0]
    agent = task_policies(params, args.setting, probe, policies_path(root, args.setting))
    space = probe.action_space
    runs = []
    for k in range(seeds):
        models = build_models(
            probe.observation_space.shape[0],
            space.shape[0],
            torch.tensor(space.low),
            torch.tensor(space.high),
            params.context,
            params.forward_model,
            params.translator,
            params.cycle_baseline,
        )
        path = translators_path(root, args.setting) / f"seed{k}.pt"
        try:
            features, _ = load_models(path, models, setting=args.setting, tasks=tasks)
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
        runs.append((models, features))
    started = time.perf_counter()
    rows: list[tuple] = []

    # Table 1: env e = (kind, seed); kind 0 the source policy as is, 1 through ours, 2 through Zhang et al.'s
    source = tasks.index(spec.pair[0])
    kinds = ("source_policy", "ours", "zhang_et_al")
    kind_of, seed_of = np.unravel_index(np.arange(len(kinds) * seeds), (len(kinds), seeds))
    envs = task_envs(params, args.setting, [spec.pair[1]] * len(kind_of))
    routes = []
    for k, (models, _) in enumerate(runs):
        routes.append(Route(np.flatnonzero((kind_of == 1) & (seed_of == k)), models.pair_translator))
        routes.append(Route(np.flatnonzero((kind_of == 2) & (seed_of == k)), models.cycle_baseline))
    reset_seeds = (params.seed + EVAL_SEED_OFFSET + seed_of * episodes).tolist()
    stats = evaluate_policies(routed_policy(agent, [source] * len(envs), routes), envs, episodes, reset_seeds)
    per_seed = np.array([s.mean for s in stats]).reshape(len(kinds), seeds)
    table1: dict[str, Any] = {}
    for kind, (name, returns) in enumerate(zip(kinds, per_seed, strict=True)):
        summary = summarize(returns)
        runs_of_kind = [s for s, of in zip(stats, kind_of, strict=True) if of == kind]
        table1[name] = {"mean": summary.mean, "stderr": summary.stderr, "per_seed": returns.tolist()}
        table1[name] |= diagnostics(runs_of_kind)
        rows += [("table1", params.seed + k, spec.pair[0], spec.pair[1], name, r) for k, r in enumerate(returns)]
    source_mean = table1["source_policy"]["mean"]  # a ratio to a source return <= 0 reads as a gain: none then
    table1["ours_over_source"] = table1["ours"]["mean"] / source_mean if source_mean > 0 else None
    for name, other in (("ours_minus_source", "source_policy"), ("ours_minus_zhang_et_al", "zhang_et_al")):
        difference = summarize(per_seed[kinds.index("ours")] - per_seed[kinds.index(other)])  # paired by seed
        table1[name] = {"mean": difference.mean, "stderr": difference.stderr}
    shown = [
        f"{n} {table1[n]['mean']:.1f} ± {table1[n]['stderr']:.1f} ({table1[n]['at_bounds']:.0%} at bounds)"
        for n in kinds
    ]
    print(f"evaluate_transfer {args.setting} Table 1 {spec.pair[0]} -> {spec.pair[1]}: " + ", ".join(shown))

    # Fig. 5: env e = (kind, seed, j, i); policy j on task i, kind 0 as is, 1 through the multi-task translator
    shape = (2, seeds, n_tasks, n_tasks)
    kind_of, seed_of, source_of, target_of = np.unravel_index(np.arange(np.prod(shape)), shape)
    envs = [task_envs(params, args.setting, [tasks[i]])[0] for i in target_of]

    def multi_task(k: int) -> Route:
        models, features = runs[k]
        envs_k = np.flatnonzero((kind_of == 1) & (seed_of == k))
        z_src, z_tgt = features[source_of[envs_k]], features[target_of[envs_k]]
        return Route(envs_k, lambda states, actions: models.translator(states, actions, z_src, z_tgt))

    reset_seeds = (params.seed + EVAL_SEED_OFFSET + seed_of * episodes).tolist()
    policy = routed_policy(agent, source_of, [multi_task(k) for k in range(seeds)])
    stats = evaluate_policies(policy, envs, episodes, reset_seeds)
    returns = np.array([s.mean for s in stats]).reshape(shape)
    names = ("source_policy", "ours_multi_task")
    for e, value in enumerate(returns.reshape(-1)):
        j, i = tasks[source_of[e]], tasks[target_of[e]]
        rows.append(("fig5", params.seed + seed_of[e], j, i, names[kind_of[e]], value))
    improvement, stderr = paired_improvement_pct(returns[1], returns[0])  # [j, i], over the seeds' means
    saturation = np.array([s.at_bounds for s in stats]).reshape(shape).mean(1)
    fig5 = {
        "tasks": tasks,
        "source_policy_return": returns[0].mean(0).tolist(),  # [j][i]: policy of task j on task i
        "transferred_return": returns[1].mean(0).tolist(),
        "improvement_pct": improvement.tolist(),
        "improvement_pct_stderr": stderr.tolist(),
        "pairs_improved": int((improvement > 0).sum()),
        "off_diagonal_pairs_improved": int((improvement > 0)[~np.eye(n_tasks, dtype=bool)].sum()),
        "source_policy_at_bounds": saturation[0].tolist(),  # [j][i]: share of action components at the bounds
        "transferred_at_bounds": saturation[1].tolist(),
    }
    wall = time.perf_counter() - started
    write_csv(root / "reports" / "transfer" / args.setting / "returns.csv", RETURNS_HEADER, rows)
    write_json(
        root / "reports" / "metrics" / f"transfer_{args.setting}.json",
        {
            "setting": args.setting,
            "profile": params.profile.value,
            "seeds": seeds,
            "eval_episodes_per_seed": episodes,
            "translator_fit": f"{budget.transfer_epochs} x {budget.transfer_updates_per_epoch} updates",
            "translator_loss": params.translator.loss.value,
            "task_definition": params.task_definition.value,
            "dataset_transitions_per_task": budget.collect_steps,
            "policy_pretrain_steps": budget.transfer_pretrain_steps,
            "pair": list(spec.pair),
            "table1": table1,
            "fig5": fig5,
            "wall_seconds": round(wall, 1),
        },
    )
    improved = f"{fig5['off_diagonal_pairs_improved']} of {n_tasks * (n_tasks - 1)} off-diagonal pairs improved"
    print(f"evaluate_transfer {args.setting} Fig. 5: {improved} ({wall:.0f} s)")


def diagnostics(stats: list[ReturnStats]) -> dict[str, Any]:
    """Over one policy's seeds: the share of action components at the bounds and the mean return's parts
    (forward progress, control cost, ...): what tells a working translator from a bang-bang one."""
    names = sorted({name for s in stats for name in s.reward_parts})
    return {
        "at_bounds": float(np.mean([s.at_bounds for s in stats])),
        "reward_parts": {name: float(np.mean([s.reward_parts.get(name, 0.0) for s in stats])) for name in names},
    }


if __name__ == "__main__":
    run(main)
