"""Stage train_translator: F, C and H on a setting's dataset (paper 3.2, 3.3), once per seed.

Per seed k (seed + k): the target task's F and our one-pair translator and the Zhang et al.
baseline for Table 1's pair; C and the context-conditioned F on every task, the task features
and the multi-task translator for Fig. 5. Every fit runs the profile's transfer_epochs x
transfer_updates_per_epoch. Writes data/translators/<setting>/seed<k>.pt and the losses per
epoch to reports/transfer/<setting>/losses.csv (seed, model, epoch, loss, value).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from pipeline.data.dataset import DatasetError, read_dataset
from pipeline.models.cycle_baseline import train_cycle_translator
from pipeline.transfer.checkpoint import build_models, save_models
from pipeline.transfer.fit import (
    Schedule,
    fit_context_and_forward,
    fit_forward_model,
    fit_translator,
    task_features,
)
from pipeline.transfer.windows import Windows, task_data
from stages.common import argument_parser, load_params_or_exit, write_csv
from stages.transfer_common import dataset_path, transfer_spec_or_exit, translators_path

LOSS_HEADER = ("seed", "model", "epoch", "loss", "value")


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="a setting of params 'transfer', e.g. halfcheetah-armature")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    params = load_params_or_exit(args.params)
    spec = transfer_spec_or_exit(params, args.setting)
    root = Path(args.root)
    try:
        transitions, info = read_dataset(dataset_path(root, args.setting), setting=args.setting)
    except DatasetError as err:
        raise SystemExit(f"error: {err}") from None
    if list(info.tasks.values()) != list(spec.tasks):
        found = list(info.tasks.values())
        raise SystemExit(f"error: dataset tasks {found} differ from params {spec.tasks}; rerun collect")

    budget = params.budget
    schedule = Schedule(budget.transfer_epochs, budget.transfer_updates_per_epoch)
    source, target = (spec.tasks.index(t) for t in spec.pair)
    data = [task_data(transitions, k) for k in range(len(spec.tasks))]
    windows = [Windows(d, params.context.history, params.forward_model.future_steps) for d in data]
    low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
    progress = not args.no_progress
    rows: list[tuple] = []
    fits = f"{schedule.epochs} x {schedule.updates_per_epoch} updates per fit"
    print(f"train_translator {args.setting}: {budget.seeds} seed(s), {fits}")
    for k in range(budget.seeds):
        seed = params.seed + k
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        models = build_models(
            info.observation_shape[0],
            info.action_shape[0],
            low,
            high,
            params.context,
            params.forward_model,
            params.translator,
            params.cycle_baseline,
        )

        def log(model: str, seed: int = seed):
            def on_epoch(epoch: int, losses: dict[str, float]) -> None:
                rows.extend((seed, model, epoch, name, f"{value:.6g}") for name, value in losses.items())
                write_csv(root / "reports" / "transfer" / args.setting / "losses.csv", LOSS_HEADER, rows)

            return on_epoch

        started = time.perf_counter()
        common = {"generator": generator, "progress": progress}
        fit_forward_model(
            models.pair_forward,
            data[target],
            params.forward_model,
            schedule,
            norm_data=[data[source]],
            on_epoch=log("pair_forward"),
            **common,
        )
        fit_translator(
            models.pair_translator,
            models.pair_forward,
            [data[source]],
            params.translator,
            schedule,
            on_epoch=log("pair_translator"),
            **common,
        )
        src, tgt = data[source], data[target]
        train_cycle_translator(
            models.cycle_baseline,
            models.pair_forward,
            (src.states, src.actions, models.pair_forward.delta_norm(src.deltas)),
            (tgt.states, tgt.actions),
            params.cycle_baseline,
            schedule,
            on_epoch=log("cycle_baseline"),
            **common,
        )
        fit_context_and_forward(
            models.encoder,
            models.context_forward,
            windows,
            params.context,
            params.forward_model,
            schedule,
            on_epoch=log("context_forward"),
            **common,
        )
        features = task_features(models.encoder, windows, params.context.feature_segments, generator)
        fit_translator(
            models.translator,
            models.context_forward,
            data,
            params.translator,
            schedule,
            features=features,
            on_epoch=log("translator"),
            **common,
        )
        meta = {
            "setting": args.setting,
            "tasks": list(spec.tasks),
            "pair": list(spec.pair),
            "seed": seed,
            "profile": params.profile.value,
            "dataset_transitions": info.num_transitions,
        }
        save_models(translators_path(root, args.setting) / f"seed{k}.pt", models, features, meta)
        print(f"train_translator {args.setting}: seed {seed} done ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
