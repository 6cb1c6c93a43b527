"""The context embeddings z of stored rows, computed once per encoder version.

C changes only when meta-training refits it (every `retrain_every` steps), yet every TD3 and SIL
update needs z = C(segment) for the rows it samples. Encoding each sampled segment afresh costs
about a quarter of a TD3 update (two 256-row passes through C per update, plus gathering the
segments); caching z per stored row and invalidating the cache when C is refitted or a row (or a
row its segment reads) is overwritten gives the same z for a fraction of the work: each row is
encoded at most once per refit.

The owner (a replay buffer) invalidates the rows it overwrites; after changing an encoder the caller
re-encodes everything (`refresh`, in large batches: cheaper than meeting each row on a lookup). z is
computed with the batch that needed it, so it may differ from another batching in the last bits; it
is saved with the buffer's state so that a resumed run looks up exactly the values an uninterrupted
one would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

Encoder = Callable[[torch.Tensor], torch.Tensor]  # seed k's C: segments [N, K_h, step] -> z [N, z_dim]
Index = tuple[torch.Tensor, ...]  # advanced index into the stored rows, seed first, each broadcastable to [K, B]


class ContextCache:
    def __init__(self, shape: tuple[int, ...], z_dim: int, device: str | torch.device = "cpu"):
        """`shape`: the owner's row layout, seeds first (e.g. [K, T, capacity]), on the owner's device."""
        self.z = torch.zeros(*shape, z_dim, device=device)
        self.valid = torch.zeros(shape, dtype=torch.bool, device=device)

    def invalidate(self, where: Index | tuple[slice | int | torch.Tensor, ...] = ()) -> None:
        """Forget z of the rows `where` (all rows by default)."""
        self.valid[where] = False

    @torch.no_grad()
    def lookup(
        self, index: Index, segments: Callable[[Index], torch.Tensor], encoders: Sequence[Encoder]
    ) -> torch.Tensor:
        """z [K, B, z_dim] of the rows `index`; rows not cached are encoded, seed k by `encoders[k]`, from
        `segments(sub_index)` (their context segments) and cached."""
        index = torch.broadcast_tensors(*index)
        z = self.z[index]
        missing = ~self.valid[index]
        if missing.any():
            for k, encoder in enumerate(encoders):
                rows = missing[k].nonzero().squeeze(1)
                if len(rows):
                    sub = tuple(i[k, rows] for i in index)
                    fresh = encoder(segments(sub))
                    z[k, rows] = fresh
                    self.z[sub] = fresh
                    self.valid[sub] = True
        return z

    def refresh(
        self,
        rows: Sequence[torch.Tensor],
        segments: Callable[[Index], torch.Tensor],
        encoders: Sequence[Encoder],
        chunk: int = 8192,
    ) -> None:
        """Drop every cached z, then encode seed k's stored rows `rows[k]` ([N_k, index dims] of the
        owner's layout after the seed) in chunks."""
        self.invalidate()
        with torch.no_grad():
            for k, (encoder, index) in enumerate(zip(encoders, rows, strict=True)):
                for part in index.split(chunk) if len(index) else ():
                    sub = (torch.full((len(part),), k, device=part.device), *part.unbind(-1))
                    self.z[sub] = encoder(segments(sub))
                    self.valid[sub] = True

    def state_arrays(self, prefix: str, rows: tuple[slice, ...] = ()) -> dict[str, np.ndarray]:
        return {f"{prefix}_z": self.z[rows].cpu().numpy(), f"{prefix}_valid": self.valid[rows].cpu().numpy()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray], prefix: str, rows: tuple[slice, ...] = ()) -> None:
        """Restore the saved cache; a state without one (older) leaves everything to be encoded again."""
        self.invalidate()
        if f"{prefix}_z" in arrays:
            self.z[rows] = torch.from_numpy(arrays[f"{prefix}_z"]).to(self.z.device)
            self.valid[rows] = torch.from_numpy(arrays[f"{prefix}_valid"]).to(self.valid.device)
