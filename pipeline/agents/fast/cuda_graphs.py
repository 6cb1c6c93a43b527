"""TD3's update replayed as a CUDA graph.

On a GPU, 256-unit nets leave a TD3 update launch-bound: its ~100 small kernels take longer to
launch than to run. A captured graph launches them all at once. Capture records the kernels
without running them, so the captured update must read its inputs from tensors that stay put
(`UpdateGraphs.run` copies each call's inputs into them), must not draw random numbers or wait
on the host (TD3 draws its target noise and samples its batch before), and must keep every
tensor it reads across replays (parameters, optimizer state) in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

WARMUP_UPDATES = 3  # eager updates of each kind before its capture (lazy CUDA/cuBLAS set-up, optimizer state)

Losses = dict[str, torch.Tensor]


class _Captured(NamedTuple):
    graph: torch.cuda.CUDAGraph
    losses: Losses  # the graph's output tensors, rewritten by each replay


class UpdateGraphs:
    """Runs `update(inputs, actor_step) -> losses` through one CUDA graph per value of `actor_step`.

    Each kind of update first runs eagerly WARMUP_UPDATES times on a side stream, then is captured
    on that same stream (lazy per-stream set-up, such as BLAS handles, must not happen during a
    capture) and replayed from then on; every call is one real update.
    `inputs` is a NamedTuple of tensors whose shapes stay those of the first call. The losses
    returned are tensors the graph rewrites at its next replay, and parameters' `.grad` those of
    the last capture. Call `reset` after replacing a tensor the update reads (e.g. an optimizer's
    `load_state_dict`, which makes new state tensors). `device`: the CUDA device the update runs on.
    """

    def __init__(self, update: Callable[[NamedTuple, bool], Losses], device: torch.device):
        self._update = update
        self._device = device
        self._stream = torch.cuda.Stream(device=device)
        self.reset()

    def reset(self) -> None:
        """Forget the captured graphs: the next calls warm up and capture anew."""
        self._inputs: NamedTuple | None = None
        self._captured: dict[bool, _Captured] = {}
        self._eager_runs = {False: 0, True: 0}

    def run(self, inputs: NamedTuple, actor_step: bool) -> Losses:
        with torch.cuda.device(self._device):  # streams and capture on the update's device, whichever is current
            self._hold(inputs)
            captured = self._captured.get(actor_step)
            if captured is None and self._eager_runs[actor_step] >= WARMUP_UPDATES:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self._stream):  # records the update; nothing runs until replay
                    losses = self._update(self._inputs, actor_step)
                captured = self._captured[actor_step] = _Captured(graph, losses)
            if captured is not None:
                captured.graph.replay()
                return captured.losses
            self._eager_runs[actor_step] += 1
            current = torch.cuda.current_stream()
            self._stream.wait_stream(current)
            with torch.cuda.stream(self._stream):
                losses = self._update(self._inputs, actor_step)
            current.wait_stream(self._stream)
            return losses

    def _hold(self, inputs: NamedTuple) -> None:
        """Copy `inputs` into the tensors the graphs read (made on the first call)."""
        if self._inputs is None:
            self._inputs = type(inputs)(*(t.clone() for t in inputs))
            return
        for name, held, fresh in zip(inputs._fields, self._inputs, inputs, strict=True):
            if held.shape != fresh.shape:
                raise ValueError(
                    f"CUDA graphs of this update read {name} of shape {list(held.shape)}, got {list(fresh.shape)}"
                )
            held.copy_(fresh)
