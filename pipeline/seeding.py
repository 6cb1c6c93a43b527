"""Named random streams: one run seed, any number of unrelated torch generators.

Seeding each generator with `seed + k` (or `seed + offset`) lets streams of different purposes
coincide: TD3's target noise of seed k, seeded `seed + k + 1`, would replay the draws that
initialise seed k + 1's weights, and a replay buffer seeded `seed + k` would sample with the very
bits that initialised seed k's networks. `stream_seed(seed, name)` mixes the pair through numpy's
SeedSequence instead, so every (seed, name) has its own 63-bit seed. Classes that hold K seeds
name their streams with `seed + k`, so seed k of a K-seed run still draws what the 1-seed run with
seed `seed + k` draws.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def stream_seed(seed: int, name: str) -> int:
    """The seed of random stream `name` of run seed `seed` (>= 0): a 63-bit int, unrelated across pairs."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    entropy = [seed, zlib.crc32(name.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def stream_generator(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on `device` seeded with `stream_seed(seed, name)`."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, name))
