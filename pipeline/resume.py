"""Resume folders of long stages: complete states in checksummed generations, one writer at a time.

Every resumable stage (TD3 pretraining, meta-training, translator training) keeps its state in one folder,
`.resume/<stage>/<run>/`, through `ResumeFolder`:

- **Generations.** Each save writes a new generation `gen-<n>/`: the caller's files, then `manifest.json`
  (each file's size and sha256, the run's fingerprint, the position reached and the time), all fsynced, in
  a temp folder renamed into place. The previous complete generation is deleted only once the new one is
  in place, and one generation before the newest is kept, so a state damaged after it was written (a copy
  cut short, flipped bytes) still leaves the one before it.
- **Checked reads.** `load` verifies the newest generation's manifest and every file against it before the
  caller reads anything. A missing, truncated or corrupted file is reported in one line naming it, and the
  generation before it is tried; with none left the run starts over. A state of another configuration or
  code version (its fingerprint) is not continued either: the run starts over and says so.
- **One line on resuming**: from which position (env step, fit), the state's time, and how much work is redone
  (from the interrupted run's last `progress` note, else at most the checkpoint interval).
- **A lock.** The folder's `lock` file is held (fcntl) while the folder is open; a second process gets
  `ResumeLocked`, naming the folder and the pid holding it.

Nothing is pickled: callers write numpy, JSON and tensor files (read back with `weights_only=True`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipeline.atomic import disk_full_named, ensure_free_space

LAYOUT_VERSION = 2  # 1: one folder of files with loop.json (before generations)
MANIFEST = "manifest.json"
LOCK = "lock"
PROGRESS = "progress.json"
KEPT = 2  # complete generations kept: the newest and the one before it
PROGRESS_EVERY_S = 2.0  # the least time between two `progress` notes
_GENERATION = re.compile(r"gen-(\d{6,})")
_CHUNK = 1 << 20

T = TypeVar("T")


class ResumeLocked(RuntimeError):
    """Another process holds the resume folder."""


_HELD: dict[Path, ResumeFolder] = {}  # the folders this process holds open


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plural(unit: str, n: int) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(timestamp))


class ResumeFolder:
    """The resume folder of one run. Use as a context manager (it holds the folder's lock while open):

        with ResumeFolder(path, fingerprint=fp, name="pretrain_source hopper-size", unit="env step",
                          total=steps, every=checkpoint_every) as resume:
            state = resume.load(read)          # read(generation_folder) -> state, or None: start afresh
            ...
            resume.progress(step)              # now and then: how far the run got (cheap, rate-limited)
            resume.save(write, position=step)  # write(empty_folder) writes the state's files
            ...
            resume.remove()                    # the run's outputs are written: the state is no longer needed

    `fingerprint` identifies the configuration and code (stages.common.run_fingerprint): a state with another
    one is not continued. `unit`, `total` and `every` (positions between saves) word the messages.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        fingerprint: str,
        name: str,
        unit: str = "step",
        total: int | None = None,
        every: int | None = None,
        kept: int = KEPT,
    ):
        if kept < 1:
            raise ValueError(f"kept must be >= 1, got {kept}")
        self.folder, self.fingerprint, self.name = Path(folder), fingerprint, name
        self.unit, self.total, self.every, self.kept = unit, total, every, kept
        self.position: int | None = None  # where the loaded or last saved state is
        self._lock_fd: int | None = None
        self._ours: list[str] = []  # generations of this run, oldest first (loaded or written by this process)
        self._progress_at = 0.0
        self._key = self.folder

    # -- lock ------------------------------------------------------------------------------------------------

    def __enter__(self) -> ResumeFolder:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the folder if needed and take its lock; ResumeLocked if another process holds it.
        A ResumeFolder of this process left open on the same folder (a run of a stage's `main` that an
        exception ended, as tests interrupt them) is closed first: one process is one writer."""
        if self._lock_fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = self.folder.resolve()
        stale = _HELD.get(self._key)
        if stale is not None:
            stale.close()
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ResumeLocked(
                f"{self.folder} is in use by another process (pid {holder}), which is running this stage; "
                "wait for it to end or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        _HELD[self._key] = self
        for leftover in self.folder.glob(".gen-*.tmp"):  # a save a kill interrupted
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.folder.parent.glob(f".{self.folder.name}.*.old"):  # layout 1's, moved aside by a kill
            shutil.rmtree(leftover, ignore_errors=True)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None
            if _HELD.get(self._key) is self:
                del _HELD[self._key]

    def _require_open(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError(f"{self.folder}: open the resume folder (with ResumeFolder(...) as resume) first")

    # -- generations -----------------------------------------------------------------------------------------

    def _generations(self) -> list[Path]:
        """The complete-looking generation folders, newest first."""
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _GENERATION.fullmatch(p.name))]
        return [p for _, p in sorted(found, reverse=True) if p.is_dir()]

    def _manifest(self, generation: Path) -> tuple[dict[str, Any] | None, str]:
        """(the manifest's body, '') or (None, what is wrong with the generation, naming the file)."""
        path = generation / MANIFEST
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None, f"{path} is missing: the state is incomplete"
        try:
            manifest = json.loads(text)
            body, digest = manifest["body"], manifest["sha256"]
            files = body["files"]
            if not isinstance(files, dict) or hashlib.sha256(_canonical(body)).hexdigest() != digest:
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None, f"{path} is truncated or corrupted (it does not match its own checksum)"
        for name, entry in sorted(files.items()):
            file = generation / name
            try:
                size = file.stat().st_size
            except FileNotFoundError:
                return None, f"{file} is missing"
            if size != entry["size"]:
                return None, f"{file} is truncated or corrupted ({size} bytes, {entry['size']} were written)"
            if _sha256(file) != entry["sha256"]:
                return None, f"{file} is corrupted (its sha256 differs from the one saved with it)"
        return body, ""

    def load(self, read: Callable[[Path], T]) -> T | None:
        """`read(generation_folder)` of the newest intact state of this configuration, after one line saying
        where the run resumes; None (the caller starts afresh) when there is none. Damaged generations are
        reported one line each and skipped; nothing is read from them."""
        self._require_open()
        damaged: list[str] = []
        found: tuple[Path, dict[str, Any]] | None = None
        foreign = False
        for generation in self._generations():
            body, problem = self._manifest(generation)
            if body is None:
                damaged.append(problem)
                continue
            if body.get("layout") != LAYOUT_VERSION or body.get("fingerprint") != self.fingerprint:
                foreign = True
            else:
                found = generation, body
            break
        if found is None and not foreign and not damaged:
            foreign = any(p.name not in (LOCK, PROGRESS) for p in self.folder.iterdir())  # layout 1's files
        for problem in damaged:
            then = (
                f"resuming from the state saved before it ({self.unit} {found[1]['position']})"
                if found is not None
                else "no intact resume state is left: starting over"
            )
            print(f"warning: {self.name}: {problem}; {then}", file=sys.stderr)
        if found is None:
            if foreign:
                print(f"note: {self.folder} holds the resume state of another configuration or code version; "
                      "starting afresh", file=sys.stderr)  # fmt: skip
            return None
        generation, body = found
        value = read(generation)
        self.position = int(body["position"])
        self._ours = [generation.name]
        print(f"{self.name}: {self._resume_line(body)}", flush=True)
        return value

    def _resume_line(self, body: dict[str, Any]) -> str:
        position = int(body["position"])
        of = "" if self.total is None else f" of {self.total}"
        ago = max(0, round(time.time() - float(body["saved_at"])))
        line = f"resuming at {self.unit} {position}{of} from the state saved {_when(body['saved_at'])} ({ago} s ago)"
        reached = self._last_progress()
        if reached is not None and reached > position:
            redone = _plural(self.unit, reached - position)
            return f"{line}; the interrupted run had reached {self.unit} {reached}: {redone} redone"
        if self.every:
            return (
                f"{line}; at most {_plural(self.unit, self.every)} redone (how far the interrupted run got is unknown)"
            )
        return f"{line}; the work after it is redone"

    def _last_progress(self) -> int | None:
        try:
            note = json.loads((self.folder / PROGRESS).read_text())
            return int(note["position"]) if note.get("fingerprint") == self.fingerprint else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def progress(self, position: int, *, force: bool = False) -> None:
        """Note how far the run has got (at most every PROGRESS_EVERY_S s unless `force`): a resumed run
        says how much of the interrupted run's work it redoes. Not a state; a damaged note is ignored."""
        now = time.monotonic()
        if self._lock_fd is None or (not force and now - self._progress_at < PROGRESS_EVERY_S):
            return
        self._progress_at = now
        note = {"position": int(position), "fingerprint": self.fingerprint, "pid": os.getpid(), "at": time.time()}
        (self.folder / PROGRESS).write_text(json.dumps(note))

    def save(self, write: Callable[[Path], None], *, position: int) -> None:
        """A new generation: `write(folder)` fills an empty folder, then the manifest is added, everything is
        fsynced and the folder renamed into place; only then are generations older than the one before it
        (and anything else in the folder: states of other configurations) deleted."""
        self._require_open()
        numbers = [int(m.group(1)) for p in self.folder.iterdir() if (m := _GENERATION.fullmatch(p.name))]
        name = f"gen-{max(numbers, default=0) + 1:06d}"
        if numbers:  # the last state's size: the new one needs about as much, beside the generations kept
            last = self.folder / f"gen-{max(numbers):06d}"
            size = sum(p.stat().st_size for p in last.rglob("*") if p.is_file()) if last.is_dir() else 0
            ensure_free_space(self.folder, size, f"{self.name}: its resume state")
        tmp = self.folder / f".{name}.{secrets.token_hex(4)}.tmp"
        tmp.mkdir()
        try:
            with disk_full_named(self.folder / name):
                write(tmp)
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            body = {
                "layout": LAYOUT_VERSION,
                "fingerprint": self.fingerprint,
                "position": int(position),
                "unit": self.unit,
                "saved_at": time.time(),
                "files": {
                    p.relative_to(tmp).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files
                },
            }
            manifest = {"body": body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            for path in [*files, tmp / MANIFEST, *(p for p in tmp.rglob("*") if p.is_dir()), tmp]:
                _fsync(path)
            os.rename(tmp, self.folder / name)
            _fsync(self.folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._ours = [*self._ours, name][-self.kept :]
        self.position = int(position)
        for path in self.folder.iterdir():
            if path.name not in (*self._ours, LOCK, PROGRESS):
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def remove(self) -> None:
        """Delete the folder (the run's outputs are safe); the lock is released."""
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.name != LOCK:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            (self.folder / LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # something else appeared in it
                self.folder.rmdir()
        self.close()
        self._ours = []


__all__ = ["LAYOUT_VERSION", "ResumeFolder", "ResumeLocked"]
