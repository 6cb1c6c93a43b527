"""Atomic file output: write to a temp file in the same folder, fsync, then rename.

A reader (or DVC) sees either the old file or the complete new one, never a partial one,
even if the writer is killed mid-write. A write that runs out of disk space raises
`DiskFullError` naming the output and the free bytes, after removing its temp file: the old
version stays. Long stages also call `ensure_free_space` before a large write, so that they stop
with the bytes needed before writing anything.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MiB = 1024**2
RESERVE = 16 * MiB  # kept free beyond an estimate: metadata, logs, the estimate's slack


class DiskFullError(OSError):
    """Not enough disk space for an output; the previous version of it is intact."""


def free_bytes(path: str | Path) -> int:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def ensure_free_space(path: str | Path, needed: int, what: str) -> None:
    """Raise DiskFullError, saying the bytes needed and where, unless `needed` (+ RESERVE) bytes are free at `path`."""
    free = free_bytes(path)
    if free < needed + RESERVE:
        raise DiskFullError(
            errno.ENOSPC,
            f"{what} needs {needed / MiB:.1f} MiB under {Path(path).parent} and only {free / MiB:.1f} MiB are free; "
            "free some space there (or run with another --root); nothing was written, the last good state is intact",
        )


@contextmanager
def disk_full_named(path: Path) -> Iterator[None]:
    """Turn an out-of-space error while writing `path` into a DiskFullError that names it."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.ENOSPC or isinstance(err, DiskFullError):
            raise
        free = free_bytes(path)
        raise DiskFullError(
            errno.ENOSPC, f"disk full while writing {path} ({free / MiB:.1f} MiB free); the previous version is intact"
        ) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on clean exit it is fsynced and renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with disk_full_named(path):
            yield tmp_path
            with open(tmp_path, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; on clean exit its files are fsynced and it replaces `path`.

    The old folder is moved aside, the new one renamed onto `path`, the old one deleted: a kill leaves
    the old complete folder, or the new one, or (between the two renames) none, never a partial one;
    `recover_folder` then puts the old one back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        with disk_full_named(path):
            yield tmp
            for file in tmp.rglob("*"):
                _fsync(file)
            _fsync(tmp)
        old = tmp.with_suffix(".old")
        if path.exists():
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old.exists():
                os.rename(old, path)
            raise
        _fsync(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recover_folder(path: str | Path) -> bool:
    """Put back the complete folder that `atomic_folder` had moved aside when a kill came between its two
    renames (`path` missing, `.<name>.<hex>.old` beside it); True if it did. Folders a kill left beside a
    present `path` (moved aside after the second rename, or half-written temp folders) are deleted.
    Call before reading `path`, while nothing writes it."""
    path = Path(path)
    if not path.parent.is_dir():
        return False
    aside = sorted(path.parent.glob(f".{path.name}.*.old"), key=lambda p: p.stat().st_mtime)
    recovered = not path.exists() and bool(aside)
    if recovered:
        os.rename(aside.pop(), path)
        _fsync(path.parent)
    for leftover in [*aside, *path.parent.glob(f".{path.name}.*.tmp")]:
        shutil.rmtree(leftover, ignore_errors=True)
    return recovered


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
