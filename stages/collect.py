"""Stage collect: a transition dataset per transfer setting (paper 5.1), in Parquet (docs/datasets.md).

Task k's good policy (stage pretrain_tasks) with Gaussian action noise (`collect.action_noise`)
acts `collect_steps` steps on task k, for every task of params 'transfer.<setting>.tasks'.
Writes data/datasets/<setting>/ (transitions.parquet, meta/info.json, meta/episodes.parquet).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline import memory
from pipeline.allocator import keep_freed_memory
from pipeline.atomic import ensure_free_space
from pipeline.data.collect import collect_transitions
from pipeline.data.dataset import DatasetInfo, write_dataset
from stages.common import argument_parser, check_memory_or_exit, load_params_or_exit, run
from stages.transfer_common import dataset_path, policies_path, task_envs, task_policies, transfer_spec_or_exit


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("setting", help="a setting of params 'transfer', e.g. halfcheetah-armature")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    keep_freed_memory()
    params = load_params_or_exit(args.params)
    tasks = transfer_spec_or_exit(params, args.setting).tasks

    root = Path(args.root)
    envs = task_envs(params, args.setting, tasks)
    checkpoint = policies_path(root, args.setting)
    agent = task_policies(params, args.setting, envs[0], checkpoint)
    steps = params.budget.collect_steps
    obs_dim, action_dim = envs[0].observation_space.shape[0], envs[0].action_space.shape[0]
    check_memory_or_exit(memory.collect(obs_dim, action_dim, steps, len(tasks)))
    print(f"collect {args.setting}: {steps} steps on each of tasks {tasks}, noise {params.collect.action_noise}")
    transitions = collect_transitions(
        envs,
        agent.select_action,
        steps_per_task=steps,
        action_noise=params.collect.action_noise,
        seed=params.seed,
        progress=not args.no_progress,
    )
    space = envs[0].action_space
    info = DatasetInfo(
        setting=args.setting,
        tasks=dict(enumerate(tasks)),
        observation_shape=list(envs[0].observation_space.shape),
        action_shape=list(space.shape),
        action_low=space.low.tolist(),
        action_high=space.high.tolist(),
        policy_checkpoint_sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        seed=params.seed,
        num_transitions=len(transitions.index),
        num_episodes=int(transitions.episode_index[-1]) + 1,
        extra={
            "policy": "task k's good policy (stage pretrain_tasks, member k) + Gaussian action noise",
            "action_noise": params.collect.action_noise,
            "max_episode_steps": params.budget.max_episode_steps,
            "profile": params.profile.value,
        },
    )
    size = memory.dataset_bytes(obs_dim, action_dim, steps * len(tasks))
    ensure_free_space(dataset_path(root, args.setting), size, f"collect {args.setting}: the dataset")
    write_dataset(dataset_path(root, args.setting), transitions, info)
    print(f"collect {args.setting}: {info.num_transitions} transitions, {info.num_episodes} episodes")


if __name__ == "__main__":
    run(main)
