"""What a device's arithmetic units do natively, where that decides which speed options pay off.

bf16 autocast is a speed option only where bf16 matmuls run in hardware (AVX-512 BF16 or AMX on a
CPU): elsewhere torch emulates them, and a TD3 update ran ~30x slower than in fp32 on an AVX2-only
CPU (`make bench`).
"""

from __future__ import annotations

from typing import Any

import torch


def cpu_capabilities() -> dict[str, Any]:
    """torch's view of this CPU (`torch.cpu.get_capabilities`: instruction sets, cache sizes); {} where absent."""
    get = getattr(torch.cpu, "get_capabilities", None)
    return dict(get()) if get is not None else {}


def native_bf16(device: torch.device | str) -> bool:
    """Whether bf16 matmuls run in hardware on `device`: AVX-512 BF16 or AMX on a CPU, bf16 support on CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return True  # no way to tell here: assume the backend knows what it offers
    capabilities = cpu_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
