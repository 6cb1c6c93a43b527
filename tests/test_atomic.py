"""Atomic outputs: a file or folder is the old complete one or the new complete one, never a partial one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.atomic import atomic_folder, recover_folder, write_text


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
