"""Markdown tables of meta-training (paper Tables 2-4) from `meta_train` summaries, the paper's values beside ours."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pipeline.evaluation import improvement_pct
from pipeline.methods.registry import label
from pipeline.report.paper import TABLE2, TABLE2_SETTINGS, TABLE3, TABLE3_4_ENV_STEPS, TABLE3_METHODS, TABLE4

# setting -> method -> metrics.json, plus "test_return_1m": the test return at the run's last evaluation at or
# before 1M env steps, where the paper's Tables 3 and 4 read theirs (`curves.return_at`; the plot stage adds it)
Results = Mapping[str, Mapping[str, Mapping[str, Any]]]
WITHOUT_PT, WITH_PT = TABLE3_METHODS


def _pm(stats: Mapping[str, float]) -> str:
    return f"{stats['mean']:.1f} ± {stats['stderr']:.1f}"


def budget_label(metrics: Mapping[str, Any]) -> str:
    return (
        f"profile `{metrics['profile']}`, {metrics['env_steps']} env steps, {metrics['seeds']} seed(s), "
        f"delay {metrics['delay']}, {metrics['eval_episodes']} eval episode(s) per task"
    )


def _runs(results: Results) -> list[Mapping[str, Any]]:
    return [metrics for methods in results.values() for metrics in methods.values()]


def _budgets(results: Results) -> list[str]:
    labels = sorted({budget_label(m) for m in _runs(results)})
    return [f"Ours: {label}." for label in labels]


def _at_paper_steps(runs: list[Mapping[str, Any]]) -> list[str]:
    """The line that says at how many env steps Tables 3 and 4 read our runs."""
    steps = sorted({run["test_return_1m"]["env_steps"] for run in runs})
    return [
        f"Ours at {', '.join(map(str, steps))} env steps: each run's last evaluation at or before "
        f"{TABLE3_4_ENV_STEPS} env steps, where the paper reads Tables 3 and 4."
    ]


def table2_markdown(results: Results) -> str:
    """Final test return per method and setting (ours: mean ± s.e. over seeds) above the paper's Table 2."""
    settings = [s for s in TABLE2_SETTINGS if s in results] + [s for s in results if s not in TABLE2_SETTINGS]
    methods = sorted({m for r in results.values() for m in r})
    lines = [
        "# Table 2: test return of meta-training",
        "",
        "Dense return on held-out test tasks (mean over test tasks; mean ± standard error over seeds).",
        *_budgets(results),
        "The paper's rows: 2M steps, 3 runs, delay 500.",
        "",
        "| method | " + " | ".join(settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    for method in methods:
        cells = [_pm(results[s][method]["final_test_return"]) if method in results[s] else "not run" for s in settings]
        lines.append(f"| {label(method)} (ours) | " + " | ".join(cells) + " |")
    for name, values in TABLE2.items():
        paper = dict(zip(TABLE2_SETTINGS, values, strict=True))
        cells = [f"{paper[s]:.1f}" if s in paper else "" for s in settings]
        lines.append(f"| {name} (paper) | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def _transferred(metrics: Mapping[str, Any]) -> str:
    """Share and counts of MCAT's transferred training episodes (runs from before these counts: n/a)."""
    if "training_episodes" not in metrics:
        return "n/a"
    trials, follows = metrics["trial_episodes"], metrics["followed_episodes"]
    share = metrics["transferred_share"]
    return f"{share:.1%} ({trials} trials, {follows} followed of {metrics['training_episodes']})"


def table3_markdown(results: Results) -> str:
    """MCAT w/o PT vs MCAT and the improvement PT brings, ours beside the paper's Table 3."""
    lines = [
        "# Table 3: effect of policy transfer (PT)",
        "",
        "Dense test return, mean ± standard error over seeds. Improvement = (MCAT - w/o PT) / |w/o PT|.",
        "Transferred: MCAT's training episodes (after the random start) acted in by a transferred policy,",
        "trials and followed transfers (reports/meta/<setting>/mcat/transfers.csv lists them).",
        *_budgets(results),
        *_at_paper_steps(_runs(results)),
        "The paper's values: 1M steps, 3 runs, delay 500.",
        "",
        "| setting | w/o PT (ours) | MCAT (ours) | improvement (ours) | transferred (ours) "
        "| w/o PT (paper) | MCAT (paper) | improvement (paper) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting, methods in results.items():
        if WITH_PT not in methods or WITHOUT_PT not in methods:
            continue
        without, with_pt = methods[WITHOUT_PT]["test_return_1m"], methods[WITH_PT]["test_return_1m"]
        paper = TABLE3.get(setting)
        reference = ["", "", ""]
        if paper:
            reference = [f"{paper[0]:.1f}", f"{paper[1]:.1f}", f"{paper[2]:.1f} %"]
        ours = f"{improvement_pct(with_pt['mean'], without['mean']):.1f} %"
        lines.append(
            f"| {setting} | {_pm(without)} | {_pm(with_pt)} | {ours} | {_transferred(methods[WITH_PT])} | "
            + " | ".join(reference)
            + " |"
        )
    return "\n".join([*lines, ""])


def table4_markdown(results_by_delay: Mapping[int, Results], staged: Collection[int] | None = None) -> str:
    """w/o PT and MCAT per delay (200 / 350 / 500) for the settings of the paper's Table 4; "not run" where absent.

    `staged`: the delays this configuration's stages produce (meta_train's and meta_delay's); others are
    summaries committed by an earlier run, which `dvc repro` does not rerun, and the table says so."""
    earlier = sorted(d for d in results_by_delay if staged is not None and d not in staged)
    notes = [
        f"Delay(s) {', '.join(map(str, earlier))}: summaries committed by an earlier run (reports/meta/delay-*/),",
        "not among this configuration's stages, so `dvc repro` does not refresh them.",
    ]
    lines = [
        "# Table 4: sparser rewards (delay steps)",
        "",
        "Dense test return, mean ± standard error over seeds; the paper's values (1M steps, 3 runs) in brackets.",
        "Delays other than params.yaml's `delay` come from the meta_delay stages (`meta_train.other_delays`).",
        *[line for delay in sorted(results_by_delay) for line in _budgets(results_by_delay[delay])],
        *_at_paper_steps([run for results in results_by_delay.values() for run in _runs(results)]),
        *(notes if earlier else []),
        "",
        "| setting | delay | w/o PT | MCAT | improvement |",
        "|---|---|---|---|---|",
    ]
    for setting, delay in TABLE4:
        paper = TABLE4[(setting, delay)]
        methods = results_by_delay.get(delay, {}).get(setting, {})
        reference = [f"{paper[0]:.1f}", f"{paper[1]:.1f}", f"{paper[2]:.1f} %"]
        ours = ["not run"] * 3
        if WITH_PT in methods and WITHOUT_PT in methods:
            without, with_pt = methods[WITHOUT_PT]["test_return_1m"], methods[WITH_PT]["test_return_1m"]
            ours = [_pm(without), _pm(with_pt), f"{improvement_pct(with_pt['mean'], without['mean']):.1f} %"]
        cells = [f"{a} ({b})" for a, b in zip(ours, reference, strict=True)]
        lines.append(f"| {setting} | {delay} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])
