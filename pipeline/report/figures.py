"""Matplotlib figures of the reports (PNG: DVC shows PNG plots offline). Figure objects, no pyplot state."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from pipeline.atomic import atomic_path
from pipeline.report.tables import budget_line

NEAR_ZERO_SOURCE = 0.1  # a source return below this share of the target task's own good policy's return


def fig5_cells(fig5: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fig. 5's cells: (improvement % [j, i], its s.e., return difference [j, i], near-zero mask [j, i]).

    Where |source return| is below NEAR_ZERO_SOURCE x |return of task i's own policy on task i| (the
    diagonal), a percentage of it would read as a huge gain (+4432 %): such cells are shown as the
    return difference instead."""
    source = np.asarray(fig5["source_policy_return"], dtype=float)
    difference = np.asarray(fig5["transferred_return"], dtype=float) - source
    native = np.abs(np.diag(source))  # policy i on its own task i
    near_zero = np.abs(source) < NEAR_ZERO_SOURCE * native[None, :]
    return np.asarray(fig5["improvement_pct"]), np.asarray(fig5["improvement_pct_stderr"]), difference, near_zero


def fig5_heatmap(path: str | Path, metrics: Mapping[str, Any], title: str, labels: Sequence[str] | None = None) -> None:
    """Improvement in % of the transferred over the source policy for every (source j, target i) pair,
    that of the seeds' mean returns ± the s.e. of the paired differences over |source|; the colour scale
    is centred at 0 and clipped at ±100 %. Cells whose source return is near zero (`fig5_cells`) show the
    return difference, marked Δ, coloured at the end of the scale by its sign. `labels`: the tasks' names
    (default: str of each task value)."""
    fig5 = metrics["fig5"]
    tasks = list(labels) if labels is not None else [str(t) for t in fig5["tasks"]]
    mean, stderr, difference, near_zero = fig5_cells(fig5)
    shown = np.where(near_zero, np.sign(difference) * 100.0, mean)
    limit = float(np.clip(np.nanmax(np.abs(shown)), 1.0, 100.0))
    fig = Figure(figsize=(1.2 * len(tasks) + 2.5, 1.0 * len(tasks) + 2.4))
    ax = fig.subplots()
    image = ax.imshow(np.clip(shown, -limit, limit), cmap="RdBu", norm=TwoSlopeNorm(0.0, -limit, limit))
    for j in range(len(tasks)):
        for i in range(len(tasks)):
            text = f"Δ{difference[j, i]:+.0f}" if near_zero[j, i] else f"{mean[j, i]:.0f}\n±{stderr[j, i]:.0f}"
            ax.text(i, j, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel("target task")
    ax.set_ylabel("source task (its good policy)")
    budget = "\n".join(textwrap.wrap(budget_line(metrics), 70))
    improved = int((difference > 0)[~np.eye(len(tasks), dtype=bool)].sum())
    note = (
        f"{improved} of {len(tasks) * (len(tasks) - 1)} off-diagonal pairs improved. Δ: source return near 0 "
        f"(< {NEAR_ZERO_SOURCE:.0%} of the target's own policy's), cell = return difference"
    )
    heading = f"{title}: transferred over source policy (%, of the seeds' mean returns)"
    ax.set_title(f"{heading}\n" + "\n".join(textwrap.wrap(note, 80)) + f"\n{budget}", fontsize=7)
    fig.colorbar(image, ax=ax, label="improvement (%)")
    save_png(fig, path)


FIT_MODELS = ("pair_forward", "pair_translator", "cycle_baseline", "context_forward", "translator")


def transfer_fit_curves(
    path: str | Path,
    losses: Sequence[Mapping[str, str]],
    returns: Sequence[Mapping[str, str]],
    title: str,
    budget: str,
) -> None:
    """train_translator's fits per epoch, mean over seeds: each model's training loss (solid) and its loss on
    held-out episodes (dashed, `<loss>_heldout`), and the return on Table 1's target of each translator's
    transferred policy after every epoch (`epoch_returns.csv`): where a fit has flattened, and whether H's
    loss and the transferred return move together."""
    fig = Figure(figsize=(13.0, 6.4))
    axes = fig.subplots(2, 3).flatten()
    for ax, model in zip(axes, FIT_MODELS, strict=False):
        names = sorted({r["loss"] for r in losses if r["model"] == model})
        for name in [n for n in names if not n.endswith("_heldout")]:
            color = None
            for suffix, style in (("", "-"), ("_heldout", "--")):
                epochs, mean = _mean_by_epoch([r for r in losses if r["model"] == model and r["loss"] == name + suffix])
                if len(epochs):
                    label = f"{name} (held out)" if suffix else name
                    (line,) = ax.plot(epochs, mean, style, color=color, label=label)
                    color = line.get_color()
        ax.set_title(model, fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    ax = axes[len(FIT_MODELS)]
    for model in ("pair_translator", "cycle_baseline", "translator"):
        epochs, mean = _mean_by_epoch([r for r in returns if r["model"] == model], "mean_return")
        if len(epochs):
            ax.plot(epochs, mean, marker=".", label=model)
    ax.set_title("transferred policy's return on the pair's target", fontsize=8)
    ax.set_xlabel("epoch", fontsize=8)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: fits per epoch (mean over seeds)\n" + "\n".join(textwrap.wrap(budget, 120)), fontsize=8)
    save_png(fig, path)


def _mean_by_epoch(rows: Sequence[Mapping[str, str]], column: str = "value") -> tuple[np.ndarray, np.ndarray]:
    """(epochs, mean over seeds of `column` at each epoch) of CSV rows with an `epoch` column."""
    epochs = np.array(sorted({int(r["epoch"]) for r in rows}), dtype=int)
    mean = np.array([np.mean([float(r[column]) for r in rows if int(r["epoch"]) == e]) for e in epochs])
    return epochs, mean


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


def train_task_curves(
    path: str | Path,
    episodes: Mapping[str, Sequence[Mapping[str, str]]],
    tasks: Sequence[str],
    title: str,
    budget: str,
    bins: int = 20,
) -> None:
    """Training return per task (episodes.csv rows per method), mean over seeds and the episodes ending in each
    of `bins` equal spans of env steps: whether tasks learn in step, or one runs ahead (paper 1, 3.4)."""
    methods = [m for m, rows in episodes.items() if rows]
    fig = Figure(figsize=(5.0 * max(1, len(methods)), 3.8))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(methods)), sharey=True))
    for ax, method in zip(axes, methods, strict=False):
        rows = [r for r in episodes[method] if r["kind"] != "random"]
        steps = np.array([int(r["env_steps"]) for r in rows])
        edges = np.linspace(0, steps.max() if len(steps) else 1, bins + 1)
        for t, name in enumerate(tasks):
            of_task = [r for r in rows if int(r["task"]) == t]
            x = np.array([int(r["env_steps"]) for r in of_task])
            y = np.array([float(r["episode_return"]) for r in of_task])
            which = np.clip(np.digitize(x, edges[1:-1]), 0, bins - 1)
            filled = [b for b in range(bins) if (which == b).any()]
            ax.plot([edges[b + 1] for b in filled], [y[which == b].mean() for b in filled], marker=".", label=name)
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("env steps per seed (all training tasks)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training episode return (dense)")
    axes[0].legend(fontsize=7, title="task", title_fontsize=7)
    if not methods:
        axes[0].text(0.5, 0.5, "no training episodes logged", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(f"{title}\n" + "\n".join(textwrap.wrap(budget, 110)), fontsize=8)
    save_png(fig, path)


TRANSFER_MARKERS = {"trial": "x", "follow": "o"}


def transfer_events(
    path: str | Path, transfers: Mapping[str, Sequence[Mapping[str, str]]], tasks: Sequence[str], title: str
) -> None:
    """Each transferred training episode (transfers.csv rows per method): when (env steps), on which target task,
    from which source task (colour; the target itself: self-transfer), trial (x) or followed (o)."""
    methods = [m for m, rows in transfers.items() if rows] or list(transfers)[:1]
    fig = Figure(figsize=(5.4 * max(1, len(methods)), 3.8))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(methods)), sharey=True))
    colours = [f"C{j % 10}" for j in range(len(tasks))]
    for ax, method in zip(axes, methods, strict=False):
        rows = transfers.get(method, [])
        for kind, marker in TRANSFER_MARKERS.items():
            for j, name in enumerate(tasks):
                chosen = [r for r in rows if r["kind"] == kind and int(r["policy"]) == j]
                if chosen:
                    y = [int(r["task"]) + 0.12 * (j - len(tasks) / 2) / len(tasks) for r in chosen]
                    ax.scatter([int(r["env_steps"]) for r in chosen], y, marker=marker, s=14, color=colours[j],
                               label=f"{kind} from {name}")  # fmt: skip
        if not rows:
            ax.text(0.5, 0.5, "no transferred episodes", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("env steps per seed (all training tasks)", fontsize=8)
        ax.set_yticks(range(len(tasks)), tasks)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel("target task")
    fig.suptitle(title, fontsize=8)
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
        message = "no context embeddings: the method has none, or no episode of this run was longer than its context"
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
