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
    that of the seeds' mean returns ± the s.e. of the paired differences over |source|; the colour scale
    is centred at 0 and clipped at ±100 %."""
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
    ax.set_title(f"{title}: transferred over source policy (%, of the seeds' mean returns)\n{budget}", fontsize=8)
    fig.colorbar(image, ax=ax, label="improvement (%)")
    save_png(fig, path)


def fig3_curves(
    path: str | Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str, budget: str
) -> None:
    """Fig. 3: test return vs env steps, one line per method with a ± standard error band over seeds.

    `curves[method]` = (env_steps [n], mean [n], stderr [n])."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for method, (steps, mean, stderr) in curves.items():
        (line,) = ax.plot(steps, mean, label=method)
        ax.fill_between(steps, mean - stderr, mean + stderr, color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_xlabel("env steps per seed (all training tasks)")
    ax.set_ylabel("test return (dense)")
    ax.set_title(f"{title}\n" + "\n".join(textwrap.wrap(budget, 80)), fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_png(fig, path)


def embedding_scatter(
    path: str | Path, tasks: np.ndarray, embeddings: np.ndarray, labels: list[str], title: str
) -> None:
    """`embedding_figure` as a PNG."""
    save_png(embedding_figure(tasks, embeddings, labels, title), path)


def embedding_figure(tasks: np.ndarray, embeddings: np.ndarray, labels: list[str], title: str) -> Figure:
    """App. D.5: context embeddings [N, z_dim] on their first two principal components, one colour per task.
    Without embeddings (no episode of the run was longer than the context) the figure says so."""
    fig = Figure(figsize=(5.2, 4.4))
    ax = fig.subplots()
    if len(embeddings):
        centered = embeddings - embeddings.mean(0)
        _, _, directions = np.linalg.svd(centered, full_matrices=False)
        points = centered @ directions[:2].T
        for index, label in enumerate(labels):
            chosen = tasks == index
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, alpha=0.7, label=label)
        ax.legend(fontsize=7, title="task", title_fontsize=7)
    else:
        message = "no context embeddings: no episode of this run was longer than the context window"
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(message, 40)), ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=8)
    return fig


def save_png(fig: Figure, path: str | Path) -> None:
    """Lay out `fig` and write it to `path` atomically, as a 120 dpi PNG."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
