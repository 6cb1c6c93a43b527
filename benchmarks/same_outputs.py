"""Do two git revisions give the same outputs? The smoke DAG of each, compared file by file.

For each revision: `git worktree add` (detached) into a scratch folder, a run folder beside it with the
revision's pipeline/, stages/, dvc.yaml and params.yaml (set to `profile: smoke`), `dvc init --no-scm` and
`dvc repro`, all with this interpreter (the current .venv's python). Then every file under data/ and
reports/ of the two runs is compared:

- checkpoints (*.pt): `torch.load(weights_only=True)`, tensor by tensor (exact, dtype and shape included);
- Parquet tables: `pyarrow.Table.equals`, schema included;
- JSON: equal after dropping wall-time keys (WALL_TIME_KEYS: `wall_seconds`, at any depth);
- CSV and text: byte for byte;
- figures (*.png) are not compared.

Prints one line per difference and a verdict, `identical` or `different`; exit status 0 or 1. Files that
only one revision writes are listed (a refactor may add an output) and do not change the verdict unless
`--strict`. Both runs must use the same CPU model: another one may round differently (docs/resume.md).

    python -m benchmarks.same_outputs HEAD my-branch            # revisions of this repository
    python -m benchmarks.same_outputs A B --repo /tmp/clone     # of another clone
    python -m benchmarks.same_outputs A B --keep                # keep the scratch folders to inspect
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
COPIED = ("pipeline", "stages", "dvc.yaml", "params.yaml")  # what a DVC run of the pipeline needs
COMPARED = ("data", "reports")
SKIPPED_SUFFIXES = (".png",)  # figures: matplotlib output, not results
WALL_TIME_KEYS = frozenset({"wall_seconds"})


def run(args: list[str], cwd: Path, log: Path | None = None) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {"DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if log is not None:
        log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).splitlines()[-30:])
        raise SystemExit(f"error: `{' '.join(args)}` in {cwd} failed ({out.returncode}):\n{tail}")


def smoke_run(repo: Path, rev: str, scratch: Path, label: str) -> Path:
    """Check out `rev` of `repo` and reproduce its smoke DAG; returns the run folder."""
    tree, work = scratch / f"{label}-tree", scratch / f"{label}-run"
    run(["git", "worktree", "add", "--detach", "-q", str(tree), rev], repo)
    try:
        work.mkdir()
        for name in COPIED:
            source = tree / name
            if source.is_dir():
                shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, work / name)
    finally:
        run(["git", "worktree", "remove", "--force", str(tree)], repo)
    raw = OmegaConf.load(work / "params.yaml")
    raw.profile = "smoke"
    OmegaConf.save(raw, work / "params.yaml")
    run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], work)
    started = time.perf_counter()
    print(f"{label}: dvc repro of {rev} in {work} ...", flush=True)
    run([sys.executable, "-m", "dvc", "repro"], work, log=scratch / f"{label}-repro.log")
    print(f"{label}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    return work


def output_files(work: Path) -> set[str]:
    files = (p for top in COMPARED for p in (work / top).rglob("*") if p.is_file())
    return {p.relative_to(work).as_posix() for p in files if p.suffix not in SKIPPED_SUFFIXES and ".dvc" not in p.parts}


def _without_wall_time(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_wall_time(v) for k, v in obj.items() if k not in WALL_TIME_KEYS}
    if isinstance(obj, list):
        return [_without_wall_time(v) for v in obj]
    return obj


def _tree_differences(a: Any, b: Any, where: str) -> list[str]:
    """Where two torch.load results differ: structure, or a tensor's dtype, shape or any element."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        if not (torch.is_tensor(a) and torch.is_tensor(b)):
            return [f"{where}: tensor against {type(b if torch.is_tensor(a) else a).__name__}"]
        if a.dtype != b.dtype or a.shape != b.shape:
            return [f"{where}: {a.dtype} {list(a.shape)} against {b.dtype} {list(b.shape)}"]
        same = torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                     and torch.equal(a.nan_to_num(), b.nan_to_num()))  # fmt: skip
        return [] if same else [f"{where}: tensor values differ"]
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return [f"{where}: keys {sorted(map(str, a))} against {sorted(map(str, b))}"]
        return [d for key in a for d in _tree_differences(a[key], b[key], f"{where}.{key}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _tree_differences(x, y, f"{where}[{i}]")]
    return [] if (type(a), a) == (type(b), b) else [f"{where}: {a!r} against {b!r}"]


def compare_file(a: Path, b: Path, name: str) -> list[str]:
    """The differences of one output file between the two runs (empty: the same)."""
    if name.endswith(".pt"):
        return _tree_differences(torch.load(a, weights_only=True), torch.load(b, weights_only=True), name)
    if name.endswith(".parquet"):
        tables = pq.read_table(a), pq.read_table(b)
        return [] if tables[0].equals(tables[1], check_metadata=True) else [f"{name}: Parquet tables differ"]
    if name.endswith(".json"):
        objs = [_without_wall_time(json.loads(p.read_text())) for p in (a, b)]
        return [] if objs[0] == objs[1] else [f"{name}: JSON differs (wall-time keys ignored)"]
    return [] if a.read_bytes() == b.read_bytes() else [f"{name}: bytes differ"]


def compare_runs(a: Path, b: Path) -> tuple[list[str], list[str], int]:
    """(differences, files only one run wrote, files compared)."""
    files_a, files_b = output_files(a), output_files(b)
    one_sided = [f"only in A: {f}" for f in sorted(files_a - files_b)] + [
        f"only in B: {f}" for f in sorted(files_b - files_a)
    ]
    common = sorted(files_a & files_b)
    differences = [d for name in common for d in compare_file(a / name, b / name, name)]
    return differences, one_sided, len(common)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev_a", help="a git revision (commit, branch, tag)")
    parser.add_argument("rev_b", help="the revision compared with it")
    parser.add_argument("--repo", type=Path, default=REPO, help="the git repository holding both (default: this one)")
    parser.add_argument("--scratch", type=Path, help="folder for the two runs (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--strict", action="store_true", help="a file only one revision writes is a difference")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="same_outputs-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        runs = [
            smoke_run(args.repo.resolve(), rev, scratch, label) for rev, label in ((args.rev_a, "A"), (args.rev_b, "B"))
        ]
        differences, one_sided, compared = compare_runs(*runs)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    for line in [*differences, *one_sided]:
        print(line)
    different = bool(differences) or (args.strict and bool(one_sided))
    verdict = "different" if different else "identical"
    print(f"{verdict}: {compared} output files of A = {args.rev_a} and B = {args.rev_b} compared"
          f" ({len(differences)} differ, {len(one_sided)} written by one only; figures not compared)")  # fmt: skip
    raise SystemExit(1 if different else 0)


if __name__ == "__main__":
    main()
