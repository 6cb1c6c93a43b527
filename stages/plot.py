"""Stage plot: report tables and figures from the stages' small summaries (no training, no datasets).

Transfer (paper 5.1): Table 1 (reports/tables/table1.md) and Fig. 5 (reports/figures/fig5_<setting>.png)
from reports/metrics/transfer_<setting>.json. Meta-training (5.2, 5.3): Fig. 3
(reports/figures/fig3_<setting>.png), Tables 2-4 (reports/tables/table{2,3,4}.md) and the context
embeddings (reports/figures/embeddings_<setting>_<method>.png) from reports/meta/<setting>/<method>/.
Also reports/README.md, which shows them all. CI regenerates everything from the committed summaries.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline.atomic import write_text
from pipeline.report.curves import read_embeddings, return_at, return_curve
from pipeline.report.figures import embedding_scatter, fig3_curves, fig5_heatmap
from pipeline.report.meta_tables import METHOD_LABELS, budget_label, table2_markdown, table3_markdown, table4_markdown
from pipeline.report.paper import TABLE1, TABLE3_4_ENV_STEPS
from pipeline.report.tables import table1_markdown
from stages.common import argument_parser, load_params_or_exit

OTHER_DELAYS = "reports/meta"  # delay-<delay>/<setting>/<method>/metrics.json of the meta_delay stages


def require(path: Path, stage: str) -> Path:
    if not path.is_file():
        print(f"error: {path} is missing; run `dvc repro {stage}`", file=sys.stderr)
        raise SystemExit(2)
    return path


def read_meta_run(metrics: Path, curve: tuple) -> dict:
    """A meta_train run's metrics.json, with the test return where the paper reads Tables 3 and 4 (from its curve)."""
    return json.loads(metrics.read_text()) | {"test_return_1m": return_at(curve, TABLE3_4_ENV_STEPS)}


def main(argv: list[str] | None = None) -> None:
    args = argument_parser(__doc__.splitlines()[0]).parse_args(argv)
    params = load_params_or_exit(args.params)
    root = Path(args.root)
    figures, tables = root / "reports" / "figures", root / "reports" / "tables"
    made: list[str] = []

    transfer = {}
    for setting in params.transfer:
        path = require(root / "reports" / "metrics" / f"transfer_{setting}.json", f"evaluate_transfer@{setting}")
        transfer[setting] = json.loads(path.read_text())
    write_text(tables / "table1.md", table1_markdown(transfer))
    made.append("tables/table1.md")
    for setting, metrics in transfer.items():
        title = TABLE1[setting].label + f" ({setting})" if setting in TABLE1 else setting
        fig5_heatmap(figures / f"fig5_{setting}.png", metrics, title)
        made.append(f"figures/fig5_{setting}.png")

    meta: dict[str, dict[str, dict]] = {}
    for setting in params.meta_train.settings:
        curves = {}
        for method in params.meta_train.methods:
            run = root / "reports" / "meta" / setting / method
            stage = f"meta_train@{setting}-{method}"
            curve = return_curve(require(run / "curve.csv", stage))
            meta.setdefault(setting, {})[method] = read_meta_run(require(run / "metrics.json", stage), curve)
            curves[METHOD_LABELS.get(method, method)] = curve
            tasks, z = read_embeddings(require(run / "embeddings.csv", stage))
            if len(z):
                labels = [str(t) for t in params.tasks[setting].train]
                name = f"embeddings_{setting}_{method}.png"
                title = f"{setting}, {METHOD_LABELS.get(method, method)}: context embeddings of training tasks"
                embedding_scatter(figures / name, tasks, z, labels, title)
                made.append(f"figures/{name}")
        budget = budget_label(next(iter(meta[setting].values())))
        fig3_curves(figures / f"fig3_{setting}.png", curves, f"{setting}: test return (Fig. 3)", budget)
        made.append(f"figures/fig3_{setting}.png")
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
        made.append(f"tables/{name}")
    write_text(root / "reports" / "README.md", reports_readme(made, root))
    print(f"plot: {len(made)} tables and figures written")


def reports_readme(made: list[str], root: Path) -> str:
    """reports/README.md: every table inline (its heading one level down) and every figure, in the order made."""
    lines = [
        "# Reports",
        "",
        "Written by `python -m stages.plot` (the DVC stage `plot`) from the small summaries the stages commit",
        "(`reports/metrics/`, `reports/meta/`, `reports/transfer/`); each table and figure states the budget",
        "(profile, steps, seeds) it was computed with. Regenerate: `dvc repro plot` or `python -m stages.plot`.",
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
