"""Stage check_params: validate params.yaml before any other stage runs (and so before DVC touches any output).

Every stage depends on this stage's output, reports/params_checked.txt, whose text never changes, so a
valid edit reruns only the stages whose params changed, and an invalid one stops `dvc repro` and
`dvc exp run` here with the message naming the key. Outputs are also declared `persist: true` in
dvc.yaml, so that `dvc repro -s <stage>` (which skips this stage) leaves them in place when the
stage itself rejects the params.

It also writes data/methods/<method>.json for every registered meta-RL method: the values of the params
blocks the method reads and the sha256 of each file of its code (`registry.dependency_record`). Stages
meta_train@<setting>-<method> and meta_delay@... depend on their method's file instead of on params keys and
code folders that DVC could not look up by method name, so that a change to one method's params or code
reruns that method's stages only (docs/pipeline.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.atomic import atomic_folder, write_text
from pipeline.methods.registry import dependency_record, methods
from stages.common import argument_parser, load_params_or_exit

CHECKED = "reports/params_checked.txt"
TEXT = "params.yaml passed pipeline.config validation (stage check_params); every stage depends on this file.\n"
METHOD_DEPS = "data/methods"  # <method>.json per registered method


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    params = load_params_or_exit(args.params)
    root = Path(args.root)
    path = root / CHECKED
    if not path.is_file() or path.read_text() != TEXT:
        write_text(path, TEXT)
    records = {name: dependency_record(spec, params) for name, spec in methods().items()}
    folder = root / METHOD_DEPS
    current = {p.name: p.read_text() for p in folder.glob("*")} if folder.is_dir() else {}
    wanted = {f"{name}.json": json.dumps(record, indent=1, sort_keys=True) + "\n" for name, record in records.items()}
    if current != wanted:
        with atomic_folder(folder) as tmp:
            for name, text in wanted.items():
                (tmp / name).write_text(text)
    print(f"check_params: {args.params} is valid (profile {params.profile.value}); method deps in {METHOD_DEPS}/")


if __name__ == "__main__":
    main()
