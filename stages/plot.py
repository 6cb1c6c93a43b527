"""Stage plot: report tables and figures from the stages' small summaries (no training, no datasets).

Now: Table 1 (reports/tables/table1.md) and Fig. 5 (reports/figures/fig5_<setting>.png) from
reports/metrics/transfer_<setting>.json of every setting in params 'transfer'. CI regenerates
them from the committed summaries.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline.atomic import write_text
from pipeline.report.figures import fig5_heatmap
from pipeline.report.paper import TABLE1
from pipeline.report.tables import table1_markdown
from stages.common import argument_parser, load_params_or_exit


def main(argv: list[str] | None = None) -> None:
    args = argument_parser(__doc__.splitlines()[0]).parse_args(argv)
    params = load_params_or_exit(args.params)
    root = Path(args.root)
    results = {}
    for setting in params.transfer:
        path = root / "reports" / "metrics" / f"transfer_{setting}.json"
        if not path.is_file():
            print(f"error: {path} is missing; run `dvc repro evaluate_transfer@{setting}`", file=sys.stderr)
            raise SystemExit(2)
        results[setting] = json.loads(path.read_text())
    write_text(root / "reports" / "tables" / "table1.md", table1_markdown(results))
    for setting, metrics in results.items():
        title = TABLE1[setting].label + f" ({setting})" if setting in TABLE1 else setting
        fig5_heatmap(root / "reports" / "figures" / f"fig5_{setting}.png", metrics, title)
    print(f"plot: table1.md and {len(results)} Fig. 5 heatmap(s) written")


if __name__ == "__main__":
    main()
