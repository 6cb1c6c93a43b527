"""Stage check_params: validate params.yaml before any other stage runs (and so before DVC touches any output).

Every stage depends on this stage's output, reports/params_checked.txt, whose text never changes, so a
valid edit reruns only the stages whose params changed, and an invalid one stops `dvc repro` and
`dvc exp run` here with the message naming the key. Outputs are also declared `persist: true` in
dvc.yaml, so that `dvc repro -s <stage>` (which skips this stage) leaves them in place when the
stage itself rejects the params.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.atomic import write_text
from stages.common import argument_parser, load_params_or_exit

CHECKED = "reports/params_checked.txt"
TEXT = "params.yaml passed pipeline.config validation (stage check_params); every stage depends on this file.\n"


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    params = load_params_or_exit(args.params)
    path = Path(args.root) / CHECKED
    if not path.is_file() or path.read_text() != TEXT:
        write_text(path, TEXT)
    print(f"check_params: {args.params} is valid (profile {params.profile.value})")


if __name__ == "__main__":
    main()
