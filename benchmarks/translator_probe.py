"""Which choices make Table 1's translator beat the source policy: one pair, one variant per run.

For a pair (source task, target task) of a transfer setting and a TD3 checkpoint holding one good
policy per task (stage pretrain_tasks' td3.pt, or a resume state's agent.pt), one run:

1. collects `--steps` transitions on the source and on the target task with the data policy: each
   task's good policy (`--data good`) or another checkpoint's (`--data PATH`, e.g. an earlier, mediocre
   snapshot, as the authors' "data policy"), plus Gaussian noise `--noise` (x half the action range);
2. fits, per seed, the target F (`--forward pair`: context-free, on the target's transitions; or
   `--forward context`: C and the context F on both tasks, as the authors, scored with the target's
   mean context) and the one-pair translator H on the source's transitions, `--fits E x U` each,
   with the learning-rate phases of params `translator`;
3. evaluates the source policy and H(s, pi_src(s)) on the target task (`--episodes`, paired resets),
   after every epoch of H and at the end, with the share of actions at the bounds.

It writes a JSON of all that (and the held-out losses per epoch). The probes behind the default
budget and data choices, their commands and results are in reports/reference_runs/translator-probe/.

    python -m benchmarks.translator_probe halfcheetah-armature \
        --policies data/pretrain_tasks/halfcheetah-armature/td3.pt --data good --noise 0.3 --steps 50000 \
        --fits 12x2000 --seeds 2 --out /tmp/probe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.agents.td3 import TD3
from pipeline.atomic import write_json
from pipeline.config import load_params
from pipeline.data.collect import collect_transitions
from pipeline.evaluation import evaluate_policies, summarize
from pipeline.models.config import TranslatorLoss
from pipeline.models.epochs import Schedule
from pipeline.seeding import stream_generator, stream_seed
from pipeline.transfer.checkpoint import build_models
from pipeline.transfer.fit import fit_context_and_forward, fit_forward_model, fit_translator, task_features
from pipeline.transfer.policy import Route, routed_policy
from pipeline.transfer.windows import Windows, split_heldout, task_data
from stages.transfer_common import task_envs

EVAL_RESET = 70_000  # evaluation resets: apart from the stages' streams


def load_agent(path: Path, agent: TD3) -> TD3:
    """`agent` with the weights of a stage checkpoint (with meta) or of a resume state's agent.pt."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state.pop("meta", None)
    agent.load_state_dict(state)
    return agent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting")
    parser.add_argument("--policies", type=Path, required=True, help="TD3 checkpoint, member k = task k's policy")
    parser.add_argument("--pair", nargs=2, type=float, help="source and target task (default: params pair)")
    parser.add_argument("--data", default="good", help="'good' or a TD3 checkpoint whose member k acts on task k")
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=50_000, help="transitions per task")
    parser.add_argument("--forward", choices=("pair", "context"), default="pair")
    parser.add_argument("--fits", default="12x2000", help="E x U: epochs x updates of F and of H")
    parser.add_argument("--forward-fits", default=None, help="E x U of F if not --fits")
    parser.add_argument("--loss", choices=[x.value for x in TranslatorLoss], default="mean_l1")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--epoch-episodes", type=int, default=3, help="episodes of H's policy after each epoch")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    params = load_params(args.params)
    spec = params.transfer[args.setting]
    pair = [type(spec.tasks[0])(t) for t in args.pair] if args.pair else list(spec.pair)
    members = [spec.tasks.index(t) for t in pair]
    envs = task_envs(params, args.setting, pair)
    space = envs[0].action_space
    obs_dim, action_dim = envs[0].observation_space.shape[0], space.shape[0]

    def new_agent() -> TD3:
        return TD3(obs_dim, action_dim, space.low, space.high, params.td3, n_seeds=len(spec.tasks))

    good = load_agent(args.policies, new_agent())
    data_agent = good if args.data == "good" else load_agent(Path(args.data), new_agent())

    def data_policy(obs: np.ndarray) -> np.ndarray:  # row k acts with member members[k]
        return routed_policy(data_agent, members, [])(obs)

    transitions = collect_transitions(
        envs, data_policy, steps_per_task=args.steps, action_noise=args.noise, seed=params.seed
    )
    share = params.translator.heldout_share
    splits = [split_heldout(task_data(transitions, k), share) for k in range(2)]
    (source, held_source), (target, held_target) = splits
    translator = dataclasses.replace(params.translator, loss=TranslatorLoss(args.loss))
    epochs, updates = (int(x) for x in args.fits.split("x"))
    f_epochs, f_updates = (int(x) for x in (args.forward_fits or args.fits).split("x"))
    low, high = torch.tensor(space.low), torch.tensor(space.high)
    target_env = task_envs(params, args.setting, [pair[1]])[0]
    runs = []
    for k in range(args.seeds):
        seed = params.seed + k
        torch.manual_seed(stream_seed(seed, "translator.init"))
        models = build_models(obs_dim, action_dim, low, high, params.context, params.forward_model, translator,
                              params.cycle_baseline)  # fmt: skip
        generator = stream_generator(seed, "translator.batches")
        history, future = params.context.history, params.forward_model.future_steps
        if args.forward == "pair":
            forward_log = fit_forward_model(models.pair_forward, target, params.forward_model,
                                            Schedule(f_epochs, f_updates), generator=generator, norm_data=[source],
                                            heldout=held_target)  # fmt: skip
            forward, features = models.pair_forward, None
        else:
            windows = [Windows(d, history, future) for d in (source, target)]
            held = [Windows(d, history, future) for d in (held_source, held_target)]
            forward_log = fit_context_and_forward(models.encoder, models.context_forward, windows, params.context,
                                                  params.forward_model, Schedule(f_epochs, f_updates),
                                                  generator=generator, heldout=held)  # fmt: skip
            forward = models.context_forward
            features = task_features(models.encoder, windows, params.context.feature_segments, generator)
        h = models.pair_translator if features is None else models.translator
        z = () if features is None else (features[0], features[1])

        def translate(states: torch.Tensor, actions: torch.Tensor, h=h, z=z) -> torch.Tensor:
            return h(states, actions, *z)

        returns: list[float] = []

        def on_epoch(epoch: int, losses: dict[str, float], translate=translate, returns=returns, seed=seed) -> None:
            policy = routed_policy(good, [members[0]], [Route(np.zeros(1, int), translate)])
            stat = evaluate_policies(policy, [target_env], args.epoch_episodes, [params.seed + EVAL_RESET])[0]
            returns.append(stat.mean)
            print(f"seed {seed} epoch {epoch}: {losses} return {stat.mean:.0f}", flush=True)

        if features is None:
            h_log = fit_translator(h, forward, [source], translator, Schedule(epochs, updates), generator=generator,
                                   heldout=[held_source], on_epoch=on_epoch)  # fmt: skip
        else:  # through the context F, H conditioned on (z(source), z(target)) rows: only pair (0 -> 1)
            h_log = fit_translator(h, forward, [source, target], translator, Schedule(epochs, updates),
                                   generator=generator, features=features, heldout=[held_source, held_target],
                                   on_epoch=on_epoch)  # fmt: skip
        envs_eval = task_envs(params, args.setting, [pair[1], pair[1]])
        policy = routed_policy(good, [members[0], members[0]], [Route(np.array([1]), translate)])
        resets = [params.seed + EVAL_RESET + 1000 * k] * 2
        source_stats, ours = evaluate_policies(policy, envs_eval, args.episodes, resets)
        runs.append({
            "seed": seed,
            "source_policy": source_stats.mean,
            "ours": ours.mean,
            "source_at_bounds": source_stats.at_bounds,
            "ours_at_bounds": ours.at_bounds,
            "source_reward_parts": dict(source_stats.reward_parts),
            "ours_reward_parts": dict(ours.reward_parts),
            "epoch_returns": returns,
            "forward_fit": forward_log,
            "translator_fit": h_log,
        })  # fmt: skip
        print(f"seed {seed}: source {source_stats.mean:.0f}, ours {ours.mean:.0f} "
              f"({source_stats.at_bounds:.0%} / {ours.at_bounds:.0%} at bounds)", flush=True)  # fmt: skip
    per_seed = {name: np.array([r[name] for r in runs]) for name in ("source_policy", "ours")}
    difference = summarize(per_seed["ours"] - per_seed["source_policy"])
    summary = {name: {"mean": summarize(v).mean, "stderr": summarize(v).stderr} for name, v in per_seed.items()}
    summary["ours_minus_source"] = {"mean": difference.mean, "stderr": difference.stderr}
    data_returns = [
        float(transitions.reward[transitions.task_index == k].sum())
        / max(1, int(((transitions.task_index == k) & (transitions.terminated | transitions.truncated)).sum()))
        for k in range(2)
    ]
    run = {key: (str(v) if isinstance(v, Path) else v) for key, v in vars(args).items()}
    write_json(args.out, {"args": run, "pair": pair, "data_return_per_episode": data_returns, "summary": summary,
                          "runs": runs, "wall_seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
    print(json.dumps({"data_return_per_episode": data_returns} | summary, indent=1))


if __name__ == "__main__":
    main()
