"""Stage pretrain_tasks: a good TD3 policy on every task of a transfer setting (paper 5.1), dense reward.

The tasks train as one seed-batched TD3 (member k is task k, seed `seed + k`), so n tasks cost
little more than one. Writes data/pretrain_tasks/<setting>/td3.pt and reports/pretrain_tasks/
<setting>/curve.csv (task_index, task, env_steps, mean_return, stderr) and metrics.json.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.allocator import keep_freed_memory
from pipeline.atomic import write_json
from pipeline.training import EvalPoint
from stages.common import argument_parser, load_params_or_exit, run, write_csv
from stages.pretraining import pretrain
from stages.transfer_common import policies_meta, policies_path, transfer_spec_or_exit

CURVE_HEADER = ("task_index", "task", "env_steps", "mean_return", "stderr")


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="a setting of params 'transfer', e.g. halfcheetah-armature")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    keep_freed_memory()
    params = load_params_or_exit(args.params)
    tasks = transfer_spec_or_exit(params, args.setting).tasks

    root = Path(args.root)
    report_dir = root / "reports" / "pretrain_tasks" / args.setting
    budget = params.budget

    def on_eval(curves: list[list[EvalPoint]]) -> None:
        rows = [(k, tasks[k], *point) for k, curve in enumerate(curves) for point in curve]
        write_csv(report_dir / "curve.csv", CURVE_HEADER, rows)

    steps = budget.transfer_pretrain_steps
    print(f"pretrain_tasks {args.setting}: tasks {tasks}, {steps} steps each ({params.profile.value})")
    curves, wall = pretrain(
        params,
        root,
        stage="pretrain_tasks",
        setting=args.setting,
        tasks=list(tasks),
        steps=steps,
        checkpoint=policies_path(root, args.setting),
        meta=policies_meta(params, args.setting),
        on_eval=on_eval,
        progress=not args.no_progress,
    )
    finals = [curve[-1] for curve in curves]
    write_json(
        report_dir / "metrics.json",
        {
            "setting": args.setting,
            "tasks": list(tasks),
            "profile": params.profile.value,
            "task_definition": params.task_definition.value,
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
    run(main)
