"""Hardware capabilities: bf16 counts as native only with AVX-512 BF16 or AMX on a CPU."""

from __future__ import annotations

import pytest
import torch

from pipeline import hardware


@pytest.mark.parametrize(
    ("capabilities", "native"),
    [
        ({"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_bf16": False}, True),
        ({"avx2": True, "avx512_f": True, "avx512_bf16": False, "amx_bf16": True}, True),
        ({"avx2": True, "avx512_f": True, "avx512_bf16": False, "amx_bf16": False}, False),
        ({"avx2": True}, False),
        ({"asimd": True, "sve": True, "bf16": True, "sve_bf16": True}, True),
        ({"asimd": True, "bf16": False}, False),
    ],
    ids=["avx512-bf16", "amx", "avx512-only", "avx2-only", "arm-bf16", "arm-without"],
)
def test_native_bf16_on_a_cpu_follows_its_extensions(
    monkeypatch: pytest.MonkeyPatch, capabilities: dict[str, bool], native: bool
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert hardware.native_bf16("cpu") is native
    assert hardware.native_bf16(torch.device("cpu")) is native


def test_a_torch_without_the_capability_query_reads_as_no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    assert hardware.cpu_capabilities() == {}
    assert hardware.native_bf16("cpu") is False


def test_this_cpus_capabilities_agree_with_torchs_kernel_level() -> None:
    capabilities = hardware.cpu_capabilities()
    level = torch.backends.cpu.get_cpu_capability()
    if level.startswith("AVX512"):
        assert capabilities["avx512_f"]
    if level in ("AVX2", "AVX512"):
        assert capabilities["avx2"]
