"""Stage train_translator: F, C and H on a setting's dataset (paper 3.2, 3.3), once per seed.

Per seed k (seed + k): the target task's F and our one-pair translator and the Zhang et al.
baseline for Table 1's pair; C and the context-conditioned F on every task, the task features
and the multi-task translator for Fig. 5. Every fit runs the profile's transfer_epochs x
transfer_updates_per_epoch. Writes data/translators/<setting>/seed<k>.pt and the losses per
epoch to reports/transfer/<setting>/losses.csv (seed, model, epoch, loss, value); after every
epoch of each translator, its transferred policy's return on Table 1's pair (eval_episodes
episodes) to epoch_returns.csv (seed, model, epoch, mean_return, stderr). The last
`translator.heldout_share` of each task's episodes are held out of every fit: losses.csv also
holds each fit's loss on them after every epoch (`<loss>_heldout`), to show where a fit flattens.

Resumable: after every fit, the models, the sampling generator and the loss rows are saved as a new
generation of .resume/train_translator/<setting>/ (pipeline.resume.ResumeFolder: checksummed, locked);
a rerun with the same params and dataset continues after the last completed fit and ends bitwise as an
uninterrupted run (a kill loses at most one fit). The folder is removed once the checkpoints are written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import memory
from pipeline.allocator import keep_freed_memory
from pipeline.atomic import atomic_folder
from pipeline.data.dataset import DatasetError, read_dataset
from pipeline.evaluation import evaluate_policies
from pipeline.guards import NonFiniteError
from pipeline.models.cycle_baseline import train_cycle_translator
from pipeline.models.epochs import EpochLog
from pipeline.resume import ResumeFolder
from pipeline.seeding import stream_generator, stream_seed
from pipeline.transfer.checkpoint import TransferModels, build_models, save_models
from pipeline.transfer.fit import (
    Schedule,
    fit_context_and_forward,
    fit_forward_model,
    fit_translator,
    task_features,
)
from pipeline.transfer.policy import Route, Translate, routed_policy
from pipeline.transfer.windows import Windows, split_heldout, task_data
from stages.common import (
    argument_parser,
    check_memory_or_exit,
    load_params_or_exit,
    open_resume_or_exit,
    resume_folder,
    run,
    run_fingerprint,
    write_csv,
)
from stages.transfer_common import (
    dataset_path,
    policies_path,
    task_envs,
    task_policies,
    transfer_spec_or_exit,
    translators_path,
)

LOSS_HEADER = ("seed", "model", "epoch", "loss", "value")
EVAL_HEADER = ("seed", "model", "epoch", "mean_return", "stderr")
EPOCH_EVAL_SEED_OFFSET = 60_000  # per-epoch evaluation resets: apart from collection and evaluate_transfer's
EpochLogger = Callable[..., EpochLog]
FITS = 6  # per seed: pair F, pair H, baseline, C + F, task features, multi-task H (seed_fits)


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="a setting of params 'transfer', e.g. halfcheetah-armature")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    keep_freed_memory()
    params = load_params_or_exit(args.params)
    spec = transfer_spec_or_exit(params, args.setting)
    root = Path(args.root)
    probe = task_envs(params, args.setting, spec.tasks[:1])[0]
    dims = probe.observation_space.shape[0], probe.action_space.shape[0]
    check_memory_or_exit(memory.train_translator(*dims, params.budget.collect_steps, len(spec.tasks)))
    try:
        transitions, info = read_dataset(dataset_path(root, args.setting), setting=args.setting)
    except DatasetError as err:
        raise SystemExit(f"error: {err}") from None
    if list(info.tasks.values()) != list(spec.tasks):
        found = list(info.tasks.values())
        raise SystemExit(f"error: dataset tasks {found} differ from params {spec.tasks}; rerun collect")

    budget = params.budget
    schedule = Schedule(budget.transfer_epochs, budget.transfer_updates_per_epoch)
    splits = [split_heldout(task_data(transitions, k), params.translator.heldout_share) for k in range(len(spec.tasks))]
    data, heldout = [train for train, _ in splits], [held for _, held in splits]
    source, target = (data[spec.tasks.index(t)] for t in spec.pair)
    held_source, held_target = (heldout[spec.tasks.index(t)] for t in spec.pair)
    history, future = params.context.history, params.forward_model.future_steps
    windows = [Windows(d, history, future) for d in data]
    held_windows = None if None in heldout else [Windows(d, history, future) for d in heldout]
    losses_csv = root / "reports" / "transfer" / args.setting / "losses.csv"
    eval_csv = root / "reports" / "transfer" / args.setting / "epoch_returns.csv"
    pair_index = [spec.tasks.index(t) for t in spec.pair]
    target_env = task_envs(params, args.setting, [spec.pair[1]])[0]
    fingerprint = run_fingerprint(params, "train_translator", args.setting, str(info.to_json()))
    resume = ResumeFolder(
        resume_folder(root, "train_translator", args.setting),
        fingerprint=fingerprint,
        name=f"train_translator {args.setting}",
        unit="fit",
        total=budget.seeds * FITS,
        every=1,
    )
    open_resume_or_exit(resume)
    state = resume.load(lambda folder: torch.load(folder / "state.pt", weights_only=True)) or fresh_state(fingerprint)

    def save_state() -> None:
        """A new resume generation: the seeds completed and the fits done of the current one."""
        position = len(state["completed"]) * FITS + state["done"]
        resume.save(lambda folder: torch.save(state, folder / "state.pt"), position=position)

    def new_models() -> TransferModels:
        low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
        configs = (params.context, params.forward_model, params.translator, params.cycle_baseline)
        return build_models(info.observation_shape[0], info.action_shape[0], low, high, *configs)

    def seed_fits(models: TransferModels, generator: torch.Generator, log: EpochLogger) -> list[Callable[[], object]]:
        """One seed's fits in order; a resumed run redoes the interrupted one (each starts a fresh optimizer)."""
        context, forward, translator = params.context, params.forward_model, params.translator
        kw = {"generator": generator, "progress": not args.no_progress}
        pair_forward = models.pair_forward
        return [
            lambda: fit_forward_model(
                pair_forward,
                target,
                forward,
                schedule,
                norm_data=[source],
                on_epoch=log("pair_forward"),
                heldout=held_target,
                **kw,
            ),
            lambda: fit_translator(
                models.pair_translator,
                pair_forward,
                [source],
                translator,
                schedule,
                on_epoch=log("pair_translator", models.pair_translator),
                heldout=None if held_source is None else [held_source],
                **kw,
            ),
            lambda: train_cycle_translator(
                models.cycle_baseline,
                pair_forward,
                (source.states, source.actions, pair_forward.delta_norm(source.deltas)),
                (target.states, target.actions),
                params.cycle_baseline,
                schedule,
                on_epoch=log("cycle_baseline", models.cycle_baseline),
                **kw,
            ),
            lambda: fit_context_and_forward(
                models.encoder,
                models.context_forward,
                windows,
                context,
                forward,
                schedule,
                on_epoch=log("context_forward"),
                heldout=held_windows,
                **kw,
            ),
            lambda: state["features"].copy_(
                task_features(models.encoder, windows, context.feature_segments, generator)
            ),
            lambda: fit_translator(
                models.translator,
                models.context_forward,
                data,
                translator,
                schedule,
                features=state["features"],
                on_epoch=log("translator", lambda s, a: models.translator(s, a, *state["features"][pair_index])),
                heldout=None if None in heldout else heldout,
                **kw,
            ),
        ]

    agent = task_policies(params, args.setting, target_env, policies_path(root, args.setting))
    progress = f"{len(state['completed'])} seed(s) and {state['done']} fit(s) done before" if state["rows"] else "new"
    fits = f"{schedule.epochs} x {schedule.updates_per_epoch} updates per fit"
    print(f"train_translator {args.setting}: {budget.seeds} seed(s), {fits} ({progress})")
    for k in range(budget.seeds):
        if k in state["completed"]:
            continue
        seed = params.seed + k
        torch.manual_seed(stream_seed(seed, "translator.init"))
        generator = stream_generator(seed, "translator.batches")
        models = new_models()
        if state["done"]:  # this seed was interrupted after state["done"] fits
            load_models_state(models, state["models"])
            generator.set_state(state["generator"])
        else:
            state["features"] = torch.zeros(len(spec.tasks), params.context.z_dim)

        def log(model: str, translate: Translate | None = None, seed: int = seed) -> EpochLog:
            """Log the epoch's losses and, for a translator, its transferred policy's return on the pair."""

            def on_epoch(epoch: int, losses: dict[str, float]) -> None:
                state["rows"].extend((seed, model, epoch, name, f"{value:.6g}") for name, value in losses.items())
                write_csv(losses_csv, LOSS_HEADER, state["rows"])
                if translate is not None:
                    policy = routed_policy(agent, [pair_index[0]], [Route(np.zeros(1, int), translate)])
                    reset = params.seed + EPOCH_EVAL_SEED_OFFSET
                    stats = evaluate_policies(policy, [target_env], budget.eval_episodes, [reset])[0]
                    state["eval_rows"].append((seed, model, epoch, f"{stats.mean:.6g}", f"{stats.stderr:.6g}"))
                    write_csv(eval_csv, EVAL_HEADER, state["eval_rows"])

            return on_epoch

        started = time.perf_counter()
        steps = seed_fits(models, generator, log)
        for i in range(state["done"], len(steps)):
            try:
                steps[i]()
            except NonFiniteError as err:
                print(f"error: train_translator {args.setting}: {err}; resume state kept: {resume.folder}",
                      file=sys.stderr)  # fmt: skip
                raise SystemExit(3) from None
            state.update(done=i + 1, models=models_state(models), generator=generator.get_state())
            save_state()
        meta = {"setting": args.setting, "tasks": list(spec.tasks), "pair": list(spec.pair), "seed": seed}
        meta |= {"profile": params.profile.value, "dataset_transitions": info.num_transitions}
        state["completed"][k] = {"models": models_state(models), "features": state["features"], "meta": meta}
        state.update(done=0, models={}, generator=torch.zeros(0, dtype=torch.uint8))
        save_state()
        print(f"train_translator {args.setting}: seed {seed} done ({time.perf_counter() - started:.0f} s)")

    write_csv(losses_csv, LOSS_HEADER, state["rows"])
    write_csv(eval_csv, EVAL_HEADER, state["eval_rows"])
    with atomic_folder(translators_path(root, args.setting)) as folder:  # no stale seed<k>.pt of an earlier run
        for k, done in state["completed"].items():
            models = new_models()
            load_models_state(models, done["models"])
            save_models(folder / f"seed{k}.pt", models, done["features"], done["meta"])
    resume.remove()


def models_state(models: TransferModels) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k: v.clone() for k, v in module.state_dict().items()} for name, module in models._asdict().items()}


def load_models_state(models: TransferModels, states: dict[str, dict[str, torch.Tensor]]) -> None:
    for name, module in models._asdict().items():
        module.load_state_dict(states[name])


def fresh_state(fingerprint: str) -> dict[str, Any]:
    """The state of a run that starts afresh."""
    empty = torch.zeros(0, dtype=torch.uint8)
    fresh = {"fingerprint": fingerprint, "rows": [], "eval_rows": [], "completed": {}, "done": 0, "models": {}}
    return fresh | {"generator": empty}


if __name__ == "__main__":
    run(main)
