"""TD3's fast update (`TD3Config.fast`, on by default): the plain update of `pipeline.agents.td3`, to float
rounding, in less time (each module says what it saves).

- `update.FastUpdate`: the update, put together from the three below
- `backward`: the ensemble nets' backward passes written out, without autograd's graph (fp32)
- `fused_adam`: torch's fused Adam step, bitwise, without torch.optim's per-call Python overhead
- `cuda_graphs`: the update replayed as a CUDA graph (`TD3(..., cuda_graph=True)`, GPU only)
"""

from pipeline.agents.fast.fused_adam import fused_adam_step
from pipeline.agents.fast.update import FastUpdate

__all__ = ["FastUpdate", "fused_adam_step"]
