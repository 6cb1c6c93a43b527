"""Stage plot: report tables and figures from the stages' small summaries (no training, no datasets).

Transfer (paper 5.1): Table 1 (reports/tables/table1.md) and Fig. 5 (reports/figures/fig5_<setting>.png)
from reports/metrics/transfer_<setting>.json, and the translator fits' curves
(reports/figures/transfer_fits_<setting>.png) from reports/transfer/<setting>/{losses,epoch_returns}.csv.
Meta-training (5.2, 5.3): Fig. 3
(reports/figures/fig3_<setting>.png), Tables 2-4 (reports/tables/table{2,3,4}.md) and the context
embeddings (reports/figures/embeddings_<setting>_<method>.png) from reports/meta/<setting>/<method>/.
Also reports/README.md, which shows them all.

`python -m stages.plot` writes everything (CI regenerates it all from the committed summaries). The
DVC stages write one part each, so that their declared outputs follow params (`-S meta_train.methods=...`):
`plot_fig5@<setting>` runs `python -m stages.plot fig5 <setting>`, `plot_fig3@<setting>` `fig3 <setting>`,
`plot_embeddings@<setting>-<method>` `embeddings <setting> <method>`, and `plot` runs `tables` (Tables 1-4
and reports/README.md) after them all.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from pipeline.atomic import write_text
from pipeline.config import Params
from pipeline.envs import task_label
from pipeline.methods.registry import label
from pipeline.report.curves import read_embeddings, return_at, return_curve
from pipeline.report.figures import (
    embedding_scatter,
    fig3_curves,
    fig5_heatmap,
    train_task_curves,
    transfer_events,
    transfer_fit_curves,
)
from pipeline.report.meta_tables import budget_label, table2_markdown, table3_markdown, table4_markdown
from pipeline.report.paper import TABLE1, TABLE3_4_ENV_STEPS
from pipeline.report.tables import budget_line, table1_markdown
from stages.common import argument_parser, load_params_or_exit

OTHER_DELAYS = "reports/meta"  # delay-<delay>/<setting>/<method>/metrics.json of the meta_delay stages
PARTS = ("all", "tables", "fig5", "fig3", "embeddings")
TRANSFER_CSVS = ("losses.csv", "epoch_returns.csv")  # train_translator's, under reports/transfer/<setting>/
EPISODE_LOGS = ("episodes", "transfers")  # meta_train's <name>.csv, under reports/meta/<setting>/<method>/


def require(path: Path, stage: str) -> Path:
    if not path.is_file():
        print(f"error: {path} is missing; run `dvc repro {stage}`", file=sys.stderr)
        raise SystemExit(2)
    return path


def read_meta_run(metrics: Path, curve: tuple) -> dict:
    """A meta_train run's metrics.json, with the test return where the paper reads Tables 3 and 4 (from its curve)."""
    return json.loads(metrics.read_text()) | {"test_return_1m": return_at(curve, TABLE3_4_ENV_STEPS)}


def transfer_metrics(root: Path, setting: str) -> dict:
    path = require(root / "reports" / "metrics" / f"transfer_{setting}.json", f"evaluate_transfer@{setting}")
    return json.loads(path.read_text())


def meta_run(root: Path, setting: str, method: str) -> Path:
    return root / "reports" / "meta" / setting / method


def meta_stage(setting: str, method: str) -> str:
    return f"meta_train@{setting}-{method}"


def meta_curve(root: Path, setting: str, method: str) -> tuple:
    return return_curve(require(meta_run(root, setting, method) / "curve.csv", meta_stage(setting, method)))


def figure_name(kind: str, setting: str, method: str | None = None) -> str:
    """A figure's path under reports/: figures/<kind>_<setting>.png, or <kind>_<setting>_<method>.png (embeddings)."""
    return f"figures/{kind}_{setting}{'' if method is None else '_' + method}.png"


def figure_names(params: Params, root: Path | None = None) -> list[str]:
    """Every figure `all` writes, under reports/, in the order reports/README.md shows them; with `root`, less
    the per-task figures of meta runs without episode logs (`missing_episode_logs`)."""
    names = [figure_name(kind, setting) for setting in params.transfer for kind in ("fig5", "transfer_fits")]
    for setting in params.meta_train.settings:
        names += [figure_name("embeddings", setting, method) for method in params.meta_train.methods]
        names.append(figure_name("fig3", setting))
        if root is None or missing_episode_logs(params, root, setting) == []:
            names += [figure_name(kind, setting) for kind in ("train_tasks", "transfers")]
    return names


def missing_episode_logs(params: Params, root: Path, setting: str) -> list[Path]:
    """The episode logs (episodes.csv, transfers.csv) missing from `setting`'s meta runs: runs summarised by
    meta_train before it wrote them have none, and their per-task figures are left out rather than failing."""
    runs = [meta_run(root, setting, method) for method in params.meta_train.methods]
    return [run / f"{name}.csv" for run in runs for name in EPISODE_LOGS if not (run / f"{name}.csv").exists()]


def write_fig5(root: Path, setting: str) -> None:
    """Fig. 5 and the fit curves of train_translator (figures/transfer_fits_<setting>.png)."""
    title = TABLE1[setting].label + f" ({setting})" if setting in TABLE1 else setting
    metrics = transfer_metrics(root, setting)
    labels = [task_label(setting, t) for t in metrics["fig5"]["tasks"]]
    fig5_heatmap(root / "reports" / figure_name("fig5", setting), metrics, title, labels)
    folder = root / "reports" / "transfer" / setting
    losses, returns = (read_csv(require(folder / name, f"train_translator@{setting}")) for name in TRANSFER_CSVS)
    path = root / "reports" / figure_name("transfer_fits", setting)
    transfer_fit_curves(path, losses, returns, title, budget_line(metrics))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def write_embeddings(params: Params, root: Path, setting: str, method: str) -> None:
    tasks, z = read_embeddings(require(meta_run(root, setting, method) / "embeddings.csv", meta_stage(setting, method)))
    labels = [task_label(setting, t) for t in params.tasks[setting].train]
    title = f"{setting}, {label(method)}: context embeddings of training tasks"
    embedding_scatter(root / "reports" / figure_name("embeddings", setting, method), tasks, z, labels, title)


def write_fig3(params: Params, root: Path, setting: str) -> None:
    """Fig. 3, and from the runs' episode logs the per-task training curves and the transfer events."""
    methods = params.meta_train.methods
    curves = {label(m): meta_curve(root, setting, m) for m in methods}
    first = meta_run(root, setting, methods[0]) / "metrics.json"
    budget = budget_label(json.loads(require(first, meta_stage(setting, methods[0])).read_text()))
    title = f"{setting}: test return (Fig. 3)"
    fig3_curves(root / "reports" / figure_name("fig3", setting), curves, title, budget)
    missing = missing_episode_logs(params, root, setting)
    if missing:
        print(
            f"plot: {setting}: no per-task training or transfer figures: {missing[0]} missing (written by "
            f"meta_train since the episode logs were added; rerun {meta_stage(setting, methods[0])})"
        )
        return
    logs = {name: {label(m): read_csv(meta_run(root, setting, m) / f"{name}.csv") for m in methods}
            for name in EPISODE_LOGS}  # fmt: skip
    tasks = [task_label(setting, t) for t in params.tasks[setting].train]
    train_task_curves(root / "reports" / figure_name("train_tasks", setting), logs["episodes"], tasks,
                      f"{setting}: training return per task", budget)  # fmt: skip
    transfer_events(root / "reports" / figure_name("transfers", setting), logs["transfers"], tasks,
                    f"{setting}: transferred training episodes (trial x, followed o)")  # fmt: skip


def write_tables(params: Params, root: Path) -> None:
    """Tables 1-4 and reports/README.md (which shows the figures of `figure_names` too)."""
    tables = root / "reports" / "tables"
    write_text(tables / "table1.md", table1_markdown({s: transfer_metrics(root, s) for s in params.transfer}))
    meta: dict[str, dict[str, dict]] = {}
    for setting in params.meta_train.settings:
        for method in params.meta_train.methods:
            metrics = require(meta_run(root, setting, method) / "metrics.json", meta_stage(setting, method))
            meta.setdefault(setting, {})[method] = read_meta_run(metrics, meta_curve(root, setting, method))
    by_delay = {params.delay: {setting: dict(methods) for setting, methods in meta.items()}}
    for path in sorted((root / OTHER_DELAYS).glob("delay-*/*/*/metrics.json")):
        delay, setting, method = path.parts[-4].removeprefix("delay-"), path.parts[-3], path.parts[-2]
        if not delay.isdigit() or int(delay) == params.delay:  # the top-level delay's runs are meta_train's
            continue
        curve = return_curve(require(path.parent / "curve.csv", f"meta_delay@{delay}-{setting}-{method}"))
        by_delay.setdefault(int(delay), {}).setdefault(setting, {})[method] = read_meta_run(path, curve)
    staged = {params.delay, *params.meta_train.other_delays}
    for name, text in (("table2.md", table2_markdown(meta)), ("table3.md", table3_markdown(meta)),
                       ("table4.md", table4_markdown(by_delay, staged))):  # fmt: skip
        write_text(tables / name, text)
    shown = ["tables/table1.md", *figure_names(params, root), *(f"tables/table{n}.md" for n in (2, 3, 4))]
    write_text(root / "reports" / "README.md", reports_readme(shown, root))


def part_errors(params: Params, part: str, setting: str | None, method: str | None) -> list[str]:
    """What is wrong with the command line's setting and method for `part` (each must be a params one)."""
    meta_settings = ("meta_train.settings", params.meta_train.settings)
    settings = {"fig5": ("transfer", list(params.transfer)), "fig3": meta_settings, "embeddings": meta_settings}
    methods = ("meta_train.methods", params.meta_train.methods) if part == "embeddings" else None
    given = (("setting", setting, settings.get(part)), ("method", method, methods))
    return [error for name, value, allowed in given for error in _argument_errors(part, name, value, allowed)]


def _argument_errors(part: str, name: str, value: str | None, allowed: tuple[str, list] | None) -> list[str]:
    """`value` must be one of `allowed` = (params key, its values), or absent where `allowed` is None."""
    if allowed is None:
        return [] if value is None else [f"part {part!r} takes no {name}"]
    key, choices = allowed
    if value is None:
        return [f"part {part!r} needs a {name}, one of params {key} {choices}"]
    return [] if value in choices else [f"{name} {value!r} is not one of params {key} {choices}"]


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", default="all", choices=PARTS, help="what to write (default: all)")
    parser.add_argument("setting", nargs="?", help="fig5: a transfer setting; fig3, embeddings: a meta_train one")
    parser.add_argument("method", nargs="?", help="embeddings: a meta_train method")
    args = parser.parse_args(argv)
    params = load_params_or_exit(args.params)
    if errors := part_errors(params, args.part, args.setting, args.method):
        print(f"error: plot {args.part}: " + "; ".join(errors), file=sys.stderr)
        raise SystemExit(2)
    root = Path(args.root)
    if args.part == "fig5":
        write_fig5(root, args.setting)
    elif args.part == "fig3":
        write_fig3(params, root, args.setting)
    elif args.part == "embeddings":
        write_embeddings(params, root, args.setting, args.method)
    else:
        if args.part == "all":
            for setting in params.transfer:
                write_fig5(root, setting)
            for setting in params.meta_train.settings:
                for method in params.meta_train.methods:
                    write_embeddings(params, root, setting, method)
                write_fig3(params, root, setting)
        write_tables(params, root)
    print(f"plot {' '.join(x for x in (args.part, args.setting, args.method) if x)}: written")


def reports_readme(made: list[str], root: Path) -> str:
    """reports/README.md: every table inline (its heading one level down) and every figure, in the order given."""
    lines = [
        "# Reports",
        "",
        "Written by `python -m stages.plot` (the DVC stages `plot` and `plot_*`) from the small summaries the",
        "stages commit (`reports/metrics/`, `reports/meta/`, `reports/transfer/`); each table and figure states the",
        "budget (profile, steps, seeds) it was computed with. Regenerate: `dvc repro plot` or `python -m stages.plot`.",
        "The summaries come from `make repro` (default budget) unless a table names another run.",
        "",
    ]
    for item in made:
        if item.endswith(".md"):
            text = (root / "reports" / item).read_text()
            lines += [f"<!-- {item} -->", "#" + text.strip(), ""]
        else:
            lines += [f"## {item}", "", f"![{item}]({item})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
