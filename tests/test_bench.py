"""`make bench` keeps working: the quick budget runs every section and writes both reports."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench


def test_quick_bench_writes_reports(tmp_path: Path) -> None:
    bench.main(["--quick", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    assert set(bench.SECTIONS) <= set(results)
    for rates in results["env_step_rate"].values():
        assert rates["raw_gymnasium_steps_per_s"] > 0 and rates["make_env_steps_per_s"] > 0
    assert results["td3_updates_per_s"]["threads_1"] > 0
    assert "env_step_rate" in (tmp_path / "benchmarks.md").read_text()
