"""The paper's translator loss (nll, eq. 3) against the authors' code's (mean_l1), on the same data and F.

For each seed's checkpoint of a finished `train_translator` run, the Table 1 translator H is
refitted from scratch with each loss through that seed's (frozen) target forward model, then the
transferred policy H(s, π_src(s)) is evaluated on the target task like `evaluate_transfer` does.
F does not depend on the translator loss, so only the objective differs. Run from the folder
holding the run's data/ (or pass --root):

    python -m benchmarks.translator_loss halfcheetah-armature --params params.yaml --root . --out reports/x.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from pipeline.agents.td3 import TD3
from pipeline.atomic import write_json
from pipeline.config import load_params
from pipeline.data.dataset import read_dataset
from pipeline.evaluation import evaluate_policies, summarize
from pipeline.models.config import TranslatorLoss
from pipeline.models.epochs import Schedule
from pipeline.seeding import stream_generator, stream_seed
from pipeline.transfer.checkpoint import build_models, load_models
from pipeline.transfer.fit import fit_translator
from pipeline.transfer.policy import Route, routed_policy
from pipeline.transfer.windows import task_data
from stages.evaluate_transfer import EVAL_SEED_OFFSET
from stages.transfer_common import dataset_path, policies_path, task_envs, translators_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    root, spec, budget = Path(args.root), params.transfer[args.setting], params.budget
    transitions, info = read_dataset(dataset_path(root, args.setting), setting=args.setting)
    source = spec.tasks.index(spec.pair[0])
    source_data = task_data(transitions, source)
    env = task_envs(params, args.setting, [spec.pair[1]])[0]
    agent = TD3(info.observation_shape[0], info.action_shape[0], info.action_low, info.action_high, params.td3,
                seed=params.seed, n_seeds=len(spec.tasks))  # fmt: skip
    agent.load(policies_path(root, args.setting))
    schedule = Schedule(budget.transfer_epochs, budget.transfer_updates_per_epoch)
    low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
    results: dict[str, list[float]] = {loss.value: [] for loss in TranslatorLoss}
    for k in range(budget.seeds):
        for loss in TranslatorLoss:
            torch.manual_seed(stream_seed(params.seed + k, "translator.init"))
            config = dataclasses.replace(params.translator, loss=loss)
            models = build_models(info.observation_shape[0], info.action_shape[0], low, high, params.context,
                                  params.forward_model, config, params.cycle_baseline)  # fmt: skip
            load_models(translators_path(root, args.setting) / f"seed{k}.pt", models, setting=args.setting,
                        tasks=list(spec.tasks))  # fmt: skip
            fresh = build_models(info.observation_shape[0], info.action_shape[0], low, high, params.context,
                                 params.forward_model, config, params.cycle_baseline).pair_translator  # fmt: skip
            generator = stream_generator(params.seed + k, "translator.batches")
            fit_translator(fresh, models.pair_forward, [source_data], config, schedule, generator=generator)
            policy = routed_policy(agent, [source], [Route(np.zeros(1, int), fresh)])
            reset = params.seed + EVAL_SEED_OFFSET + k * budget.transfer_eval_episodes
            stats = evaluate_policies(policy, [env], budget.transfer_eval_episodes, [reset])[0]
            results[loss.value].append(stats.mean)
            print(f"seed {params.seed + k} {loss.value}: {stats.mean:.1f} ± {stats.stderr:.1f}")
    summary = {loss: dict(zip(("mean", "stderr"), summarize(np.array(r))[:2], strict=True)) | {"per_seed": r}
               for loss, r in results.items()}  # fmt: skip
    fit = f"{schedule.epochs} x {schedule.updates_per_epoch} updates"
    run = {"setting": args.setting, "pair": list(spec.pair), "profile": params.profile.value, "fit": fit}
    write_json(
        args.out,
        run | {"seeds": budget.seeds, "episodes": budget.transfer_eval_episodes, "transferred_return": summary},
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
