"""What a device's arithmetic units do natively, where that decides which speed options pay off.

bf16 autocast is a speed option only where bf16 matmuls run in hardware (AVX-512 BF16 or AMX on an
x86 CPU, the BF16 extension on an Arm one, Ampere or later on CUDA): elsewhere torch emulates them,
and a TD3 update ran 30-40x slower than in fp32 on an AVX2-only CPU (`make bench`).
"""

from __future__ import annotations

from typing import Any

import torch

CPU_BF16_EXTENSIONS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")  # keys of torch.cpu.get_capabilities()


def cpu_capabilities() -> dict[str, Any]:
    """torch's view of this CPU (`torch.cpu.get_capabilities`: instruction sets, cache sizes); {} where absent."""
    get = getattr(torch.cpu, "get_capabilities", None)
    return dict(get()) if get is not None else {}


def native_bf16(device: torch.device | str) -> bool:
    """Whether bf16 matmuls run in hardware on `device` (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):  # is_bf16_supported asks about the current device
            return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return True  # no way to tell here: assume the backend knows what it offers
    capabilities = cpu_capabilities()
    return any(capabilities.get(extension) for extension in CPU_BF16_EXTENSIONS)
