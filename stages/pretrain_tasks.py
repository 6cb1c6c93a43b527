"""Stage pretrain_tasks: a good TD3 policy on every task of a transfer setting (paper 5.1), dense reward.

The tasks train as one seed-batched TD3 (member k is task k, seed `seed + k`), so n tasks cost
little more than one. Writes data/pretrain_tasks/<setting>/td3.pt and reports/pretrain_tasks/
<setting>/curve.csv (task_index, task, env_steps, mean_return, stderr) and metrics.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.agents.td3 import TD3
from pipeline.atomic import write_json
from pipeline.training import EvalPoint, train_td3
from stages.common import argument_parser, load_params_or_exit, write_csv
from stages.transfer_common import policies_path, task_envs, transfer_spec_or_exit

CURVE_HEADER = ("task_index", "task", "env_steps", "mean_return", "stderr")


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="a setting of params 'transfer', e.g. halfcheetah-armature")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    params = load_params_or_exit(args.params)
    tasks = transfer_spec_or_exit(params, args.setting).tasks

    root = Path(args.root)
    report_dir = root / "reports" / "pretrain_tasks" / args.setting
    budget = params.budget
    envs, eval_envs = task_envs(params, args.setting, tasks), task_envs(params, args.setting, tasks)
    space = envs[0].action_space
    agent = TD3(
        envs[0].observation_space.shape[0],
        space.shape[0],
        space.low,
        space.high,
        params.td3,
        seed=params.seed,
        n_seeds=len(tasks),
    )
    rows: list[tuple] = []

    def on_eval(points: list[EvalPoint]) -> None:
        rows.extend((k, tasks[k], *point) for k, point in enumerate(points))
        write_csv(report_dir / "curve.csv", CURVE_HEADER, sorted(rows, key=lambda r: (r[0], r[2])))

    steps = budget.transfer_pretrain_steps
    print(f"pretrain_tasks {args.setting}: tasks {tasks}, {steps} steps each ({params.profile.value})")
    started = time.perf_counter()
    curves = train_td3(
        agent,
        envs,
        eval_envs,
        steps=steps,
        start_steps=min(budget.pretrain_start_steps, steps),
        eval_every=budget.eval_every,
        eval_episodes=budget.eval_episodes,
        seed=params.seed,
        progress=not args.no_progress,
        on_eval=on_eval,
    )
    wall = time.perf_counter() - started
    agent.save(policies_path(root, args.setting))
    finals = [curve[-1] for curve in curves]
    write_json(
        report_dir / "metrics.json",
        {
            "setting": args.setting,
            "tasks": list(tasks),
            "profile": params.profile.value,
            "seed": params.seed,
            "env_steps": steps,
            "eval_episodes": budget.eval_episodes,
            "final_return": [p.mean_return for p in finals],
            "final_return_stderr": [p.stderr for p in finals],
            "wall_seconds": round(wall, 1),
        },
    )
    summary = ", ".join(f"{t}: {p.mean_return:.0f}" for t, p in zip(tasks, finals, strict=True))
    print(f"pretrain_tasks {args.setting}: final returns {summary} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
