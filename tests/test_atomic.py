"""Atomic outputs: a file or folder is the old complete one or the new complete one, never a partial one."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.atomic import (
    DiskFullError,
    atomic_folder,
    atomic_path,
    ensure_free_space,
    recover_folder,
    write_bytes,
    write_text,
)


def test_a_folder_is_replaced_whole_on_success(tmp_path: Path) -> None:
    target = tmp_path / "state"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with atomic_folder(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # no temp or aside folder left
    assert [p.name for p in target.iterdir()] == ["b.txt"]


def test_an_interrupted_folder_write_keeps_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "state"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as tmp:
        (tmp / "half.txt").write_text("partial")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    assert (target / "a.txt").read_text() == "old" and not (target / "half.txt").exists()


def test_the_folder_moved_aside_by_a_kill_between_the_renames_is_put_back(tmp_path: Path) -> None:
    target = tmp_path / "state"
    assert not recover_folder(target)  # nothing to recover
    for age, (name, text) in enumerate(((".state.0000000b.old", "older"), (".state.0000000a.old", "last"))):
        (tmp_path / name).mkdir()
        write_text(tmp_path / name / "a.txt", text)
        os.utime(tmp_path / name, (1_000_000 + age, 1_000_000 + age))
    (tmp_path / ".state.0000000c.tmp").mkdir()  # a write killed half-way
    (tmp_path / ".other.0000000d.old").mkdir()  # another folder's: not touched
    assert recover_folder(target)
    assert (target / "a.txt").read_text() == "last"  # the newest folder moved aside
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.0000000d.old", "state"]  # leftovers gone
    (tmp_path / ".state.0000000e.old").mkdir()  # a kill after the second rename, before the clean-up
    assert not recover_folder(target)  # `state` exists: kept as it is
    assert (target / "a.txt").read_text() == "last" and not (tmp_path / ".state.0000000e.old").exists()


def test_an_interrupted_file_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    write_text(target, "old")
    monkeypatch.setattr(Path, "write_text", lambda self, text: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_full_disk_raises_disk_full_naming_the_file_and_keeps_the_old_version(tmp_path: Path) -> None:
    target = tmp_path / "state.pt"
    target.write_bytes(b"old")
    with pytest.raises(DiskFullError, match=r"state\.pt"), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    folder = tmp_path / "dataset"
    write_text(folder / "a.txt", "old")
    with pytest.raises(DiskFullError, match="dataset"), atomic_folder(folder) as tmp:
        (tmp / "a.txt").write_text("new")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (folder / "a.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "dataset",
        "state.pt",
    ]


def test_ensure_free_space_says_the_bytes_needed_and_where(tmp_path: Path) -> None:
    ensure_free_space(tmp_path / "x", 1, "a tiny write")
    with pytest.raises(DiskFullError, match=r"needs 1048576\.0 MiB under .*; free some space"):
        ensure_free_space(tmp_path / "x", 1024**4, "a replay checkpoint")


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root and mount rights, as on the CI machine); skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_real_full_disk_keeps_the_last_good_file(tiny_filesystem: Path) -> None:
    target = tiny_filesystem / "checkpoint.pt"
    write_bytes(target, b"good" * 1000)
    with pytest.raises(DiskFullError, match=r"checkpoint\.pt"):
        write_bytes(target, b"x" * (2 * 1024**2))
    assert target.read_bytes() == b"good" * 1000 and [p.name for p in tiny_filesystem.iterdir()] == ["checkpoint.pt"]
