"""Stage pretrain_source: TD3 on a setting's source task, dense reward (paper 5.1).

Writes data/pretrain/<setting>/td3.pt, reports/pretrain/<setting>/curve.csv (env_steps,
mean_return, stderr; rewritten after every evaluation) and metrics.json.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.allocator import keep_freed_memory
from pipeline.atomic import write_json
from pipeline.training import EvalPoint
from stages.common import argument_parser, check_setting_or_exit, load_params_or_exit, run, write_csv
from stages.pretraining import pretrain

CURVE_HEADER = ("env_steps", "mean_return", "stderr")


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="task family, e.g. halfcheetah-armature")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    keep_freed_memory()
    params = load_params_or_exit(args.params)
    check_setting_or_exit(params, args.setting)

    root = Path(args.root)
    data_dir = root / "data" / "pretrain" / args.setting
    report_dir = root / "reports" / "pretrain" / args.setting
    budget, source = params.budget, params.tasks[args.setting].source

    curve: list[EvalPoint] = []

    def on_eval(curves: list[list[EvalPoint]]) -> None:
        curve[:] = curves[0]
        write_csv(report_dir / "curve.csv", CURVE_HEADER, curve)

    profile = params.profile.value
    print(f"pretrain_source {args.setting}: source task {source!r}, {budget.pretrain_steps} steps ({profile})")
    _, wall = pretrain(
        params,
        root,
        stage="pretrain_source",
        setting=args.setting,
        tasks=[source],
        steps=budget.pretrain_steps,
        checkpoint=data_dir / "td3.pt",
        meta={"setting": args.setting, "task": source, "task_definition": params.task_definition.value},
        on_eval=on_eval,
        progress=not args.no_progress,
    )
    final = curve[-1]
    write_json(
        report_dir / "metrics.json",
        {
            "setting": args.setting,
            "source_task": source,
            "profile": params.profile.value,
            "task_definition": params.task_definition.value,
            "seed": params.seed,
            "env_steps": final.env_steps,
            "eval_episodes": budget.eval_episodes,
            "final_return": final.mean_return,
            "final_return_stderr": final.stderr,
            "best_return": max(p.mean_return for p in curve),
            "wall_seconds": round(wall, 1),
        },
    )
    print(f"pretrain_source {args.setting}: final return {final.mean_return:.1f} ± {final.stderr:.1f} ({wall:.0f} s)")


if __name__ == "__main__":
    run(main)
