"""What every stage script shares: the params file, its validation, the output layout."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import importlib.metadata
import io
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.atomic import DiskFullError, write_text
from pipeline.config import MetaTrainRuns, Params, ParamsError, load_params
from pipeline.memory import Estimate, NotEnoughMemory, check_fits
from pipeline.resume import ResumeFolder, ResumeLocked


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--root", default=".", help="folder under which data/ and reports/ are written")
    return parser


def run(main: Callable[[], None]) -> None:
    """A stage's entry point: a full disk or too little memory ends it with one line (exit 4), no traceback;
    what it had written stays (atomic writes, resume states)."""
    try:
        main()
    except (DiskFullError, NotEnoughMemory) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(4) from None


def check_memory_or_exit(estimate: Estimate) -> None:
    """Refuse to start a stage whose estimated peak memory exceeds the machine's available memory."""
    try:
        check_fits(estimate)
    except NotEnoughMemory as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(4) from None


def load_params_or_exit(path: str) -> Params:
    """Validate params before any work; on error print the message and exit 2."""
    try:
        return load_params(path)
    except (ParamsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def check_setting_or_exit(params: Params, setting: str) -> None:
    if setting not in params.tasks:
        print(
            f"error: setting {setting!r} is not in params 'tasks'; allowed: {', '.join(params.tasks)}", file=sys.stderr
        )
        raise SystemExit(2)


def resume_folder(root: Path, stage: str, setting: str) -> Path:
    """Where a stage keeps the resume state of one run; removed once the run's outputs are written."""
    return root / ".resume" / stage / setting


def open_resume_or_exit(resume: ResumeFolder) -> ResumeFolder:
    """Take the resume folder's lock; if another process holds it, print which and exit 2."""
    try:
        resume.open()
    except ResumeLocked as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return resume


SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding pipeline/ and stages/


RESULT_PACKAGES = ("torch", "numpy", "mujoco", "gymnasium", "metaworld")  # their versions change the numbers too


def code_version(root: Path = SOURCE_ROOT) -> str:
    """Hash of the Python sources of `pipeline/` and `stages/` and of the versions of `RESULT_PACKAGES`:
    which code a resume state was written by."""
    digest = hashlib.sha256()
    for path in sorted([*root.glob("pipeline/**/*.py"), *root.glob("stages/*.py")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for package in RESULT_PACKAGES:
        digest.update(f"{package}=={_installed_version(package)}\0".encode())
    return digest.hexdigest()


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def run_fingerprint(params: Params, *parts: str) -> str:
    """Identifies a run's configuration and code: a resume state of another configuration, or written by
    other code (whose continuation would match neither version's uninterrupted run), is not continued.
    `meta_train` is left out: it lists which meta runs exist (e.g. Table 4's delays), not how one runs."""
    runs_left_out = dataclasses.replace(params, meta_train=MetaTrainRuns())
    text = OmegaConf.to_yaml(OmegaConf.structured(runs_left_out)) + "\n".join([*parts, code_version()])
    return hashlib.sha256(text.encode()).hexdigest()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buf.getvalue())
