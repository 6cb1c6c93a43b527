"""One process's TD3 updates/s and page faults per update, with glibc's default malloc thresholds or with
`pipeline.allocator.keep_freed_memory`: `make bench`'s `allocator` section runs it in fresh processes,
since the setting cannot be undone within one. Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from benchmarks.bench import Td3Contender
from pipeline.agents.td3_config import TD3Config
from pipeline.allocator import keep_freed_memory

WARMUP_UPDATES = 40  # at least, untimed: the heap grows to its working size during the first updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, required=True, help="seeds batched into the model")
    parser.add_argument("--keep-freed-memory", action="store_true")
    parser.add_argument("--buffer", type=int, default=10_000, help="random transitions in the replay buffer")
    parser.add_argument("--block-s", type=float, default=1.0, help="duration of one timed block")
    parser.add_argument("--blocks", type=int, default=3)
    args = parser.parse_args()
    applied = keep_freed_memory() if args.keep_freed_memory else False
    torch.set_num_threads(1)
    model = Td3Contender(TD3Config(), args.seeds, args.buffer)  # the td3 sections' model and random replay

    def block(seconds: float, min_updates: int = 1) -> tuple[int, float]:
        updates, start = 0, time.perf_counter()
        while updates < min_updates or time.perf_counter() - start < seconds:
            updates += model.step()
        return updates, time.perf_counter() - start

    block(args.block_s / 2, min_updates=WARMUP_UPDATES)
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    timed = [block(args.block_s) for _ in range(args.blocks)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    result = {
        "applied": applied,
        "updates_per_s": statistics.median(n / s for n, s in timed),
        "page_faults_per_update": faults / sum(n for n, _ in timed),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
