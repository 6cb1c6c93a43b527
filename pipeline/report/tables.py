"""Markdown tables of the reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.report.paper import TABLE1


def _pm(mean: float, stderr: float) -> str:
    return f"{mean:.1f} ± {stderr:.1f}"


def budget_line(metrics: Mapping[str, Any]) -> str:
    """The budget a transfer summary was computed with, in words."""
    loss = f" (H's loss {metrics['translator_loss']})" if "translator_loss" in metrics else ""
    definition = metrics.get("task_definition", "gymnasium_v5")  # summaries from before the key used v5's tasks
    return (
        f"profile `{metrics['profile']}`, tasks `{definition}`: good policies {metrics['policy_pretrain_steps']} TD3 "
        f"steps per task, {metrics['dataset_transitions_per_task']} transitions per task, every fit "
        f"{metrics['translator_fit']}{loss}, {metrics['seeds']} seed(s) x {metrics['eval_episodes_per_seed']} episodes"
    )


def _ratio(ratio: float | None, source_mean: float) -> str:
    """ours / source only where the source return is positive: -2644 / -151 = 17.5 is no improvement
    (evaluate_transfer writes None then; summaries written before it did may hold such a ratio)."""
    return f"{ratio:.2f}" if ratio is not None and source_mean > 0 else "n/a (source <= 0)"


def _difference(table: Mapping[str, Any], key: str) -> str:
    """A paired (by seed) difference of two policies' returns, mean ± s.e., if the summary has it."""
    return _pm(table[key]["mean"], table[key]["stderr"]) if key in table else "n/a"


def _against_paper(setting: str, metrics: Mapping[str, Any]) -> str:
    """How far a row is from the paper's effect: the paired gain in standard errors, the ratio beside the
    paper's, and the share of Fig. 5's off-diagonal pairs improved (the paper: "most")."""
    table, parts = metrics["table1"], []
    gain = table.get("ours_minus_source")
    if gain is None:
        parts.append("ours - source n/a")
    else:
        mean, stderr = gain["mean"], gain["stderr"]
        verdict = "not above the source" if mean <= 0 else "above the source"
        if mean > 0 and stderr > 0:
            verdict = f"{mean / stderr:.1f} standard errors above the source"
        parts.append(f"ours - source {_pm(mean, stderr)}, {verdict}")
    paper = TABLE1.get(setting)
    ratio = f"ours / source {_ratio(table['ours_over_source'], table['source_policy']['mean'])}"
    parts.append(ratio + (f" against the paper's {paper.ours[0] / paper.source_policy:.2f}" if paper else ""))
    improvement = np.asarray(metrics["fig5"]["improvement_pct"], dtype=float)
    off_diagonal = ~np.eye(len(improvement), dtype=bool)
    improved, pairs = int((improvement[off_diagonal] > 0).sum()), int(off_diagonal.sum())
    share = improved / max(pairs, 1)
    parts.append(f"Fig. 5: {improved} of {pairs} off-diagonal pairs improved ({share:.0%}; paper: most)")
    return "; ".join(parts)


def _at_bounds(table: Mapping[str, Any]) -> str:
    shares = [table[name].get("at_bounds") for name in ("source_policy", "ours", "zhang_et_al")]
    return " / ".join("n/a" if share is None else f"{share:.0%}" for share in shares)


def _reward_parts(table: Mapping[str, Any]) -> str:
    """Forward progress and control cost of the source and our transferred policy (mean per episode)."""
    cells = []
    for name in ("source_policy", "ours"):
        parts = table[name].get("reward_parts", {})
        cells.append(f"{parts['forward']:.0f} / {parts['ctrl']:.0f}" if {"forward", "ctrl"} <= set(parts) else "n/a")
    return "; ".join(cells)


def _own_task_returns(metrics: Mapping[str, Any]) -> str:
    fig5 = metrics["fig5"]
    own = [row[i] for i, row in enumerate(fig5["source_policy_return"])]
    return ", ".join(f"task {task}: {value:.0f}" for task, value in zip(fig5["tasks"], own, strict=True))


def table1_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 1 from `evaluate_transfer` summaries (setting -> metrics JSON), the paper's values beside ours."""
    lines = [
        "# Table 1: policy transfer with a fixed dataset",
        "",
        "Dense episode return on the target task, mean ± standard error over seeds (each seed: its own",
        "F and translators, evaluated over its episodes). Paper: mean (± s.e.) over 3 runs, 100 episodes.",
        "Differences are paired by seed (same seed's F and episodes' resets), mean ± s.e. of the differences.",
        "At bounds: share of action components within 1% of their bounds (source / ours / Zhang et al.);",
        "a bang-bang translator shows as a large share and a large control cost. Reward parts: forward",
        "progress / control cost per episode, of the source policy; of ours.",
        "",
        "| Setting | source -> target | Source policy | Transferred (Zhang et al.) | Transferred (ours) "
        "| ours - source | ours - Zhang et al. | ours / source | At bounds | Reward parts | "
        "Paper: source / Zhang et al. / ours | Budget |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, metrics in results.items():
        t = metrics["table1"]
        paper = TABLE1.get(setting)
        reference = (
            f"{paper.source_policy:.1f} / {_pm(*paper.zhang_et_al)} / {_pm(*paper.ours)}" if paper else "(not in paper)"
        )
        source, target = metrics["pair"]
        cells = [
            paper.label if paper else setting,
            f"{source} -> {target}",
            _pm(t["source_policy"]["mean"], t["source_policy"]["stderr"]),
            _pm(t["zhang_et_al"]["mean"], t["zhang_et_al"]["stderr"]),
            _pm(t["ours"]["mean"], t["ours"]["stderr"]),
            _difference(t, "ours_minus_source"),
            _difference(t, "ours_minus_zhang_et_al"),
            _ratio(t["ours_over_source"], t["source_policy"]["mean"]),
            _at_bounds(t),
            _reward_parts(t),
            reference,
            budget_line(metrics),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Each setting's good policies on their own tasks (Fig. 5's diagonal; mean over seeds and episodes):"]
    lines += [f"- {TABLE1[s].label if s in TABLE1 else s}: {_own_task_returns(m)}" for s, m in results.items()]
    lines += ["", "Against the paper, per row (computed from the numbers above):"]
    lines += [f"- {TABLE1[s].label if s in TABLE1 else s}: {_against_paper(s, m)}" for s, m in results.items()]
    lines += [
        "",
        "Our numbers come from the budget stated per row; below the paper budget they are not the paper's.",
        "The paper's Meta-World rows (Cylinder-Mug, Cylinder-Cube) are not run: there is no Meta-World setting yet.",
    ]
    notes = {
        TABLE1[setting].reward_note
        for setting, metrics in results.items()
        if setting in TABLE1 and metrics.get("task_definition", "gymnasium_v5") == "gymnasium_v5"
    } - {""}
    lines += ["", *sorted(notes)] if notes else []
    return "\n".join([*lines, ""])
