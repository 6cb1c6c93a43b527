"""Matplotlib figures of the reports (PNG: DVC shows PNG plots offline). Figure objects, no pyplot state."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from pipeline.atomic import atomic_path
from pipeline.report.tables import budget_line


def fig5_heatmap(path: str | Path, metrics: Mapping[str, Any], title: str) -> None:
    """Improvement in % of the transferred over the source policy for every (source j, target i) pair,
    annotated with mean ± s.e. over seeds; the colour scale is centred at 0 and clipped at ±100 %."""
    fig5 = metrics["fig5"]
    tasks = [str(t) for t in fig5["tasks"]]
    mean, stderr = np.asarray(fig5["improvement_pct"]), np.asarray(fig5["improvement_pct_stderr"])
    limit = float(np.clip(np.nanmax(np.abs(mean)), 1.0, 100.0))
    fig = Figure(figsize=(1.2 * len(tasks) + 2.5, 1.0 * len(tasks) + 2.0))
    ax = fig.subplots()
    image = ax.imshow(np.clip(mean, -limit, limit), cmap="RdBu", norm=TwoSlopeNorm(0.0, -limit, limit))
    for j in range(len(tasks)):
        for i in range(len(tasks)):
            ax.text(i, j, f"{mean[j, i]:.0f}\n±{stderr[j, i]:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel("target task")
    ax.set_ylabel("source task (its good policy)")
    budget = "\n".join(textwrap.wrap(budget_line(metrics), 70))
    ax.set_title(f"{title}: transferred over source policy (%)\n{budget}", fontsize=8)
    fig.colorbar(image, ax=ax, label="improvement (%)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
