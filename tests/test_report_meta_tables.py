"""Tables 2-4 of meta-training, and the plot stage's assembly of Table 4 from meta_train and meta_delay runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.evaluation import improvement_pct
from pipeline.report.meta_tables import table3_markdown, table4_markdown
from pipeline.report.paper import TABLE3, TABLE4
from stages import plot

ROOT = Path(__file__).resolve().parents[1]


def metrics(mean: float, delay: int, method: str, final: float | None = None) -> dict:
    """A meta_train summary as plot reads it: `mean` at 1M env steps (the run's end unless `final` is given)."""
    at_1m = {"mean": mean, "stderr": 1.0, "env_steps": 15000 if final is None else 1_000_000}
    final = mean if final is None else final
    return {
        "method": method, "profile": "default", "env_steps": at_1m["env_steps"] if final == mean else 2_000_000,
        "seeds": 3, "delay": delay, "eval_episodes": 2,
        "final_test_return": {"mean": final, "stderr": 1.0, "per_seed": [final] * 3}, "test_return_1m": at_1m,
    }  # fmt: skip


def test_table3_shows_the_improvement_of_mcat_over_no_pt() -> None:
    results = {"halfcheetah-armature": {"mcat": metrics(150.0, 500, "mcat"), "mcat_no_pt": metrics(100.0, 500, "x")}}
    row = next(line for line in table3_markdown(results).splitlines() if line.startswith("| halfcheetah-armature"))
    assert "100.0 ± 1.0" in row and "150.0 ± 1.0" in row and "50.0 %" in row


def test_tables_3_and_4_print_the_papers_improvements_as_published() -> None:
    for paper in (*TABLE3.values(), *TABLE4.values()):  # the printed % is the rounded returns' to within 0.15
        assert abs(paper[2] - improvement_pct(paper[1], paper[0])) < 0.15, paper
    rows = [line.split(" | ") for line in table4_markdown({}).splitlines() if line.startswith("| halfcheetah")]
    table4 = {(row[0].removeprefix("| "), int(row[1])): row[-1] for row in rows}
    assert table4[("halfcheetah-armature", 500)] == "not run (206.9 %) |"  # recomputed: 206.8
    assert table4[("halfcheetah-mass", 200)] == "not run (-6.1 %) |"  # recomputed: -6.0
    results = {"hopper-size": {"mcat": metrics(150.0, 500, "mcat"), "mcat_no_pt": metrics(100.0, 500, "x")}}
    assert "| 32.3 % |" in table3_markdown(results)  # recomputed: 32.4


def test_tables_3_and_4_read_returns_at_1m_env_steps_like_the_paper_not_at_the_end_of_a_longer_run() -> None:
    results = {
        "halfcheetah-armature": {
            "mcat": metrics(150.0, 500, "mcat", final=777.0),
            "mcat_no_pt": metrics(100.0, 500, "x", final=555.0),
        }
    }
    for table in (table3_markdown(results), table4_markdown({500: results})):
        ours = [line for line in table.splitlines() if line.startswith("| halfcheetah-armature") and "run" not in line]
        assert len(ours) == 1 and "150.0 ± 1.0" in ours[0] and "100.0 ± 1.0" in ours[0] and "777.0" not in ours[0]
        assert "Ours at 1000000 env steps" in table


def test_table4_fills_each_delay_and_names_summaries_of_earlier_runs() -> None:
    def run(delay: int, mcat: float) -> dict:
        return {"halfcheetah-armature": {"mcat": metrics(mcat, delay, "mcat"), "mcat_no_pt": metrics(1.0, delay, "x")}}

    table = table4_markdown({500: run(500, 5.0), 200: run(200, 2.0)}, staged={500})
    rows = {line.split(" | ")[1]: line for line in table.splitlines() if line.startswith("| halfcheetah-armature")}
    assert "2.0 ± 1.0" in rows["200"] and "5.0 ± 1.0" in rows["500"] and rows["350"].count("not run") == 3
    assert "Delay(s) 200: summaries committed by an earlier run" in table
    assert "earlier run" not in table4_markdown({500: run(500, 5.0), 200: run(200, 2.0)}, staged={200, 500})


def test_plot_keeps_meta_train_results_when_a_delay_folder_has_the_top_level_delay(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "reports", tmp_path / "reports")
    params = OmegaConf.load(ROOT / "params.yaml")
    setting, method = params.meta_train.settings[0], params.meta_train.methods[0]
    stale = tmp_path / "reports" / "meta" / f"delay-{params.delay}" / setting / method
    stale.mkdir(parents=True)
    (stale / "metrics.json").write_text(json.dumps(metrics(12345.0, params.delay, method)))
    plot.main(["--params", str(ROOT / "params.yaml"), "--root", str(tmp_path)])
    for table in ("table2.md", "table3.md", "table4.md"):
        assert "12345.0" not in (tmp_path / "reports" / "tables" / table).read_text(), table
