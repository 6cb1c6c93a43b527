"""How the Table 1 translator lowers the paper's loss: F's error and variance with and without H.

For one seed of a finished `train_translator` run, the source task's transitions go through the
frozen target forward model F twice: with the source actions themselves and with the translated
actions H(s, a). Printed (and written as JSON): F's Gaussian NLL of the source Δs (eq. 3), the
mean squared error of F's mean, F's mean log-variance, on how many Δs dimensions H raises each,
and the share of action components at their bounds. Run from the folder holding the run's data/:

    python -m benchmarks.translator_variance halfcheetah-armature --seed-index 0 --out reports/x.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from pipeline.atomic import write_json
from pipeline.config import load_params
from pipeline.data.dataset import read_dataset
from pipeline.models.forward import nll
from pipeline.transfer.checkpoint import build_models, load_models
from pipeline.transfer.windows import task_data
from stages.transfer_common import dataset_path, translators_path

BOUND_FRACTION = 0.99  # an action component within 1% of its bound counts as saturated


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting")
    parser.add_argument("--seed-index", type=int, default=0, help="which translator seed (k of seed<k>.pt)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    spec = params.transfer[args.setting]
    transitions, info = read_dataset(dataset_path(args.root, args.setting), setting=args.setting)
    low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
    models = build_models(info.observation_shape[0], info.action_shape[0], low, high, params.context,
                          params.forward_model, params.translator, params.cycle_baseline)  # fmt: skip
    load_models(translators_path(args.root, args.setting) / f"seed{args.seed_index}.pt", models,
                setting=args.setting, tasks=list(spec.tasks))  # fmt: skip
    forward, source = models.pair_forward, task_data(transitions, spec.tasks.index(spec.pair[0]))
    target = forward.delta_norm(source.deltas)
    scale = (high - low) / 2
    rows = {}
    for name, actions in (
        ("source_actions", source.actions),
        ("translated", models.pair_translator(source.states, source.actions)),
    ):
        mean, logvar = forward(source.states, actions)
        unit = (actions - (high + low) / 2) / scale
        rows[name] = {
            "nll": float(nll(mean, logvar, target)),
            "mse_per_dim": (mean - target).square().mean(0).tolist(),
            "logvar_per_dim": logvar.mean(0).tolist(),
            "saturated_fraction": float((unit.abs() > BOUND_FRACTION).float().mean()),
        }
    summary = {name: {"nll": r["nll"], "mse": sum(r["mse_per_dim"]) / len(r["mse_per_dim"]),
                      "mean_logvar": sum(r["logvar_per_dim"]) / len(r["logvar_per_dim"]),
                      "saturated_fraction": r["saturated_fraction"]} for name, r in rows.items()}  # fmt: skip
    before, after = rows["source_actions"], rows["translated"]
    summary["dims_mse_up"] = sum(a > b for a, b in zip(after["mse_per_dim"], before["mse_per_dim"], strict=True))
    summary["dims_logvar_up"] = sum(
        a > b for a, b in zip(after["logvar_per_dim"], before["logvar_per_dim"], strict=True)
    )
    summary["dims"] = len(before["mse_per_dim"])
    run = {"setting": args.setting, "seed_index": args.seed_index, "translator_loss": params.translator.loss.value,
           "transitions": len(source.states)}  # fmt: skip
    write_json(args.out, run | {"summary": summary, "per_dim": rows})
    print(json.dumps(run | summary, indent=1))


if __name__ == "__main__":
    main()
