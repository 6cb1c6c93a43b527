"""The context cache: lookups encode only what is missing, per seed, and agree with encoding afresh."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.methods.mcat.context_cache import ContextCache

K, ROWS, SEG = 2, 6, 3


def counting_encoders(calls: list[tuple[int, int]]) -> list:
    """Seed k's encoder: z = segment * (k + 1); records (seed, rows) of every call."""

    def encoder(k: int):
        def encode(segments: torch.Tensor) -> torch.Tensor:
            calls.append((k, len(segments)))
            return segments * (k + 1)

        return encode

    return [encoder(k) for k in range(K)]


STORED = torch.arange(K * ROWS * SEG, dtype=torch.float32).reshape(K, ROWS, SEG)


def segments(sub: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return STORED[sub]


def test_lookup_encodes_missing_rows_once_with_their_own_seeds_encoder() -> None:
    cache, calls = ContextCache((K, ROWS), SEG), []
    encoders = counting_encoders(calls)
    index = (torch.arange(K)[:, None], torch.tensor([[0, 2, 2], [1, 1, 5]]))
    expected = STORED[index] * torch.tensor([1.0, 2.0])[:, None, None]
    assert torch.equal(cache.lookup(index, segments, encoders), expected)
    assert calls == [(0, 3), (1, 3)]  # duplicates within one batch are encoded together
    calls.clear()
    assert torch.equal(cache.lookup(index, segments, encoders), expected)
    assert calls == []  # all cached
    cache.invalidate((1, torch.tensor([5])))
    assert torch.equal(cache.lookup(index, segments, encoders), expected) and calls == [(1, 1)]


def test_refresh_encodes_every_given_row_with_the_new_encoders() -> None:
    cache, calls = ContextCache((K, ROWS), SEG), []
    old = counting_encoders(calls)
    cache.lookup((torch.arange(K)[:, None], torch.zeros(K, 1, dtype=torch.long)), segments, old)
    new = [lambda s: -s, lambda s: 10 * s]
    cache.refresh([torch.arange(ROWS)[:, None], torch.arange(4)[:, None]], segments, new, chunk=4)
    assert cache.valid[0].all() and cache.valid[1, :4].all() and not cache.valid[1, 4:].any()
    assert torch.equal(cache.z[0], -STORED[0]) and torch.equal(cache.z[1, :4], 10 * STORED[1, :4])


def test_state_round_trips_and_a_state_without_a_cache_leaves_everything_to_encode() -> None:
    cache = ContextCache((K, ROWS), SEG)
    cache.refresh([torch.arange(ROWS)[:, None]] * K, segments, counting_encoders([]))
    arrays = cache.state_arrays("z")
    restored = ContextCache((K, ROWS), SEG)
    restored.load_state_arrays({name: np.array(a) for name, a in arrays.items()}, "z")
    assert torch.equal(restored.z, cache.z) and torch.equal(restored.valid, cache.valid)
    restored.load_state_arrays({}, "z")
    assert not restored.valid.any()
