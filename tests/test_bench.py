"""`make bench` keeps working: the quick budget runs every section and writes both reports.

Stable-Baselines3 is a bench-only extra (`pip install -e '.[bench]'`, which `make bench` does);
`make test` installs `.[dev]` only, so the SB3 checks skip where it is absent.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks import bench
from pipeline import hardware
from pipeline.agents.td3_config import TD3Config


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    bench.main(["--quick", "--out", str(out)])
    return json.loads((out / "benchmarks.json").read_text()), (out / "benchmarks.md").read_text()


@pytest.mark.slow
def test_quick_bench_writes_reports(quick_run: tuple[dict[str, Any], str]) -> None:
    results, markdown = quick_run
    assert set(bench.SECTIONS) <= set(results)
    for section in bench.SECTIONS:
        assert f"## {section}" in markdown
    for rates in results["env_step_rate"].values():
        assert rates["raw_gymnasium_steps_per_s"] > 0 and rates["make_env_steps_per_s"] > 0


@pytest.mark.slow
def test_the_machine_section_says_which_kernels_and_extensions_the_rates_come_from(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    machine = quick_run[0]["machine"]
    assert machine["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["native_bf16"] is hardware.native_bf16("cpu")
    assert not machine["avx512_bf16"] or machine["avx512_f"]  # AVX-512 BF16 is an AVX-512 extension


def test_cpu_isa_reads_the_family_and_model_numbers() -> None:
    isa = bench.cpu_isa({"model name": "Some CPU", "cpu family": "25", "model": "17"})
    assert (isa["cpu_model"], isa["cpu_family"], isa["cpu_model_number"]) == ("Some CPU", 25, 17)
    assert bench.cpu_isa({})["cpu_family"] is None


@pytest.mark.slow
def test_the_json_keeps_every_rounds_rates_and_they_give_the_sections_numbers(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    results, markdown = quick_run
    samples = results["td3_round_samples"]
    assert "td3_round_samples" not in markdown
    assert {len(rates) for rates in samples.values()} == {results["td3_vs_sb3"]["rounds"]}
    for threads in bench.TD3_THREADS:
        row, ours = results["td3_vs_sb3"][f"threads_{threads}"], samples[f"fp32_k1_threads_{threads}"]
        assert row["ours_updates_per_s"] == pytest.approx(np.median(ours))
        if "ratio" in row:
            sb3 = samples[f"sb3_k1_threads_{threads}"]
            assert row["ratio"] == pytest.approx(np.median(np.array(ours) / np.array(sb3)))


def test_rounds_shuffle_their_order_reproducibly() -> None:
    order: list[int] = []
    runs = {name: (lambda name=name: order.append(name) or 1.0) for name in range(6)}
    bench.interleaved(runs, 10)
    rounds = [tuple(order[6 * r : 6 * r + 6]) for r in range(10)]
    assert all(sorted(r) == list(range(6)) for r in rounds)  # every run once per round
    predecessors = {r[r.index(0) - 1] for r in rounds if r.index(0) > 0}
    assert len(predecessors) > 2  # not always behind the same run, as a rotation would leave it
    order.clear()
    bench.interleaved(runs, 10)
    assert [tuple(order[6 * r : 6 * r + 6]) for r in range(10)] == rounds  # seeded


@pytest.mark.slow
def test_quick_bench_measures_our_td3(quick_run: tuple[dict[str, Any], str]) -> None:
    results, _ = quick_run
    floor = results["arithmetic_floor"]
    assert floor["flop_per_update_counted"] == pytest.approx(floor["flop_per_update_analytic"])
    assert floor["flop_per_seed_update_counted_k5"] == pytest.approx(floor["flop_per_update_analytic"])
    for threads in bench.TD3_THREADS:
        assert results["td3_vs_sb3"][f"threads_{threads}"]["ours_updates_per_s"] > 0
        assert floor[f"threads_{threads}"]["matmul_gflop_per_s"] > 0
        assert floor[f"threads_{threads}"]["floor_updates_per_s"] > 0
        for k in bench.SEED_COUNTS:
            row = results["seed_batched"][f"k{k}_threads_{threads}"]
            assert row["per_seed_updates_per_s"] == pytest.approx(k * row["updates_per_s"])
            assert row["per_seed_updates_per_s"] > 0 and row["floor_fraction"] > 0
    for k in bench.PRECISION_SEEDS:
        for variant in bench.PRECISION_VARIANTS:
            row = results["precision"][f"{variant}_k{k}"]
            assert row.get("per_seed_updates_per_s", 0) > 0 or row["status"]
        assert results["precision"][f"fp32_k{k}"]["per_seed_updates_per_s"] > 0
    for k in bench.ALLOCATOR_SEEDS:
        row = results["allocator"][f"k{k}"]
        assert row["default_updates_per_s"] > 0 and row["kept_updates_per_s"] > 0 and row["ratio"] > 0
    if torch.cuda.is_available():
        assert results["gpu"]["fp32_k5"]["per_seed_updates_per_s"] > 0
    else:
        assert results["gpu"] == {"status": "no GPU present"}


def test_device_rates_run_on_the_cpu() -> None:
    """The GPU section's rounds, on the CPU (without its CUDA graph contenders): they run and pair."""
    rates = bench.device_update_rates(bench.QUICK, "cpu", lambda: None)
    assert set(rates) == {f"{variant}_k{k}" for variant in ("fp32", "bf16") for k in (1, 5)}
    for row in rates.values():
        assert row["per_seed_updates_per_s"] == pytest.approx(row["seeds"] * row["updates_per_s"])
        assert row["updates_per_s"] > 0


@pytest.mark.slow
def test_quick_bench_compares_with_sb3(quick_run: tuple[dict[str, Any], str]) -> None:
    pytest.importorskip("stable_baselines3")
    results, _ = quick_run
    assert results["machine"]["stable_baselines3"] == bench.SB3_VERSION
    assert results["arithmetic_floor"]["sb3_flop_per_update_counted"] > 0
    for threads in bench.TD3_THREADS:
        row = results["td3_vs_sb3"][f"threads_{threads}"]
        assert row["sb3_updates_per_s"] > 0 and row["ratio"] > 0
        assert row["target"] == bench.SB3_RATIO_TARGETS[1]
        assert row["meets_target"] == (row["ratio"] >= row["target"])
        for k in bench.SEED_COUNTS:
            assert results["seed_batched"][f"k{k}_threads_{threads}"]["vs_sb3"] > 0


def synthetic_rounds(*, with_sb3: bool) -> bench.Td3Rounds:
    """Two rounds of made-up rates: ours fp32 K seeds at 100/K updates/s (x2 at 2 threads), SB3 at 50."""
    samples: dict[bench.Contender, list[float]] = {}
    flop = bench.analytic_update_flop(TD3Config())
    for threads in bench.TD3_THREADS:
        if with_sb3:
            samples[bench.Contender("sb3", 1, threads)] = [50.0 * threads] * 2
        for k in bench.SEED_COUNTS:
            samples[bench.Contender("fp32", k, threads)] = [100.0 * threads / k] * 2
            samples[bench.Contender(bench.COMPILED, k, threads)] = [130.0 * threads / k] * 2
        samples[bench.Contender("matmul", 0, threads)] = [400.0 * threads * flop] * 2  # floor: 400/s per thread
    for k in bench.PRECISION_SEEDS:
        samples[bench.Contender("bf16", k, bench.PRECISION_THREADS)] = [300.0 / k] * 2
    unavailable = {"bf16+compile": "n/a"}
    return bench.Td3Rounds(samples, {"rounds": 2}, {}, {"flop_per_update_counted": flop}, unavailable)


@pytest.mark.parametrize("with_sb3", [True, False])
def test_sections_compute_ratios_from_the_rounds(monkeypatch: pytest.MonkeyPatch, with_sb3: bool) -> None:
    monkeypatch.setattr(bench, "td3_rounds", lambda budget: synthetic_rounds(with_sb3=with_sb3))
    vs_sb3 = bench.td3_vs_sb3(bench.QUICK)
    batched = bench.seed_batched(bench.QUICK)
    precision = bench.precision(bench.QUICK)
    floor = bench.arithmetic_floor(bench.QUICK)
    assert vs_sb3["threads_2"]["ours_updates_per_s"] == 200
    assert batched["k5_threads_1"]["per_seed_updates_per_s"] == pytest.approx(100)
    assert batched["k5_threads_1"]["floor_fraction"] == pytest.approx(0.25)
    assert floor["threads_2"]["floor_updates_per_s"] == pytest.approx(800)
    assert ("floor_vs_sb3" in floor["threads_2"]) == with_sb3
    assert precision["bf16_k5"]["vs_fp32"] == pytest.approx(1.5)
    assert precision["bf16+compile_k5"]["status"] == "n/a"
    assert precision["fp32+compile_k5"]["vs_fp32"] == pytest.approx(1.3)
    assert vs_sb3["threads_1"]["ours_compiled_updates_per_s"] == 130
    assert batched["k5_threads_2"]["per_seed_updates_per_s_compiled"] == pytest.approx(260)
    assert batched["k5_threads_1"]["floor_fraction_compiled"] == pytest.approx(0.325)
    if with_sb3:
        assert vs_sb3["threads_1"]["ratio"] == 2 and vs_sb3["threads_1"]["meets_target"]
        assert vs_sb3["threads_1"]["ratio_compiled"] == pytest.approx(2.6)
        assert batched["k5_threads_2"]["vs_sb3_compiled"] == pytest.approx(2.6)
        assert batched["k5_threads_2"]["meets_target_compiled"] is False  # floor fraction 0.325 < 0.6
        assert batched["k5_threads_2"]["vs_sb3"] == pytest.approx(2)
        assert not batched["k5_threads_2"]["meets_target"]  # 2 < 2.5
        assert precision["bf16_k5"]["vs_sb3"] == pytest.approx(3) and precision["bf16_k5"]["meets_target"]
        assert floor["threads_1"]["floor_vs_sb3"] == pytest.approx(8)
    else:
        assert "ratio" not in vs_sb3["threads_1"] and "vs_sb3" not in batched["k5_threads_2"]
        assert "vs_sb3_compiled" not in batched["k5_threads_2"]
        assert "vs_sb3" not in precision["bf16_k5"]


def test_analytic_flop_matches_flop_counter_at_other_dims() -> None:
    """The analytic count is no fit to HalfCheetah: it matches FlopCounterMode at other dims too."""
    config = TD3Config(hidden=32, batch_size=8, policy_freq=3)
    obs_dim, action_dim, seeds = 5, 2, 2
    bound = np.ones(action_dim, dtype=np.float32)
    agent = bench.TD3(obs_dim, action_dim, -bound, bound, config, n_seeds=seeds)
    buffer = bench.ReplayBuffer(obs_dim, action_dim, 16, n_seeds=seeds)
    rng = np.random.default_rng(0)
    for _ in range(16):
        buffer.add(
            rng.random((seeds, obs_dim)),
            rng.random((seeds, action_dim)),
            rng.random(seeds),
            rng.random((seeds, obs_dim)),
            np.zeros(seeds),
        )

    def step() -> int:
        for _ in range(config.policy_freq):
            agent.train(buffer.sample(config.batch_size))
        return config.policy_freq * seeds  # seed updates

    analytic = bench.analytic_update_flop(config, obs_dim, action_dim)
    assert bench.counted_update_flop(step) == pytest.approx(analytic)


def test_variants_need_their_config_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TD3Config without `precision`/`compile` fields gets "not available" rows, not a crash."""

    @dataclasses.dataclass
    class PlainConfig:
        hidden: int = 256

    assert bench.variant_config("bf16+compile")[0] is not None
    monkeypatch.setattr(bench, "TD3Config", PlainConfig)
    assert bench.variant_config("fp32") == (PlainConfig(), None)
    for variant in bench.PRECISION_VARIANTS[1:]:
        config, why = bench.variant_config(variant)
        assert config is None and why.startswith("not available")
