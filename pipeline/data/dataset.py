"""Parquet transition datasets (docs/datasets.md): one folder per setting, one row per transition.

Layout of a dataset folder (schema version 1):

    transitions.parquet     index, episode_index, frame_index, task_index, observation, action,
                            next_observation, reward (dense), terminated, truncated
    meta/info.json          setting, task value per task_index, shapes, action bounds, policy hash, seed, counts
    meta/episodes.parquet   episode_index, task_index, length, return, success (null: the env has no success signal)

Episodes are complete (collection writes whole episodes only): the last row of an episode, and
only that row, has `terminated` or `truncated` set, and within an episode next_observation[t] ==
observation[t + 1] exactly. No project code is needed to load a dataset; with pyarrow:

    import json, pyarrow.parquet as pq
    t = pq.read_table("data/datasets/halfcheetah-armature/transitions.parquet")
    obs = t["observation"].combine_chunks().flatten().to_numpy().reshape(len(t), -1)  # [N, obs_dim]

with polars (a dev dependency; tests/test_dataset.py checks this):

    import polars as pl
    df = pl.read_parquet("data/datasets/halfcheetah-armature/transitions.parquet")
    obs = df["observation"].to_numpy()  # Array(Float32, obs_dim) column -> [N, obs_dim]

and `json.load(open("data/datasets/halfcheetah-armature/meta/info.json"))` for the metadata. duckdb (tested
as well) reads the lists as FLOAT[]: `SELECT episode_index, sum(reward) FROM '.../transitions.parquet'
GROUP BY 1`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import atomic_folder, write_json

SCHEMA_VERSION = 1
TRANSITIONS_FILE = "transitions.parquet"
INFO_FILE = "meta/info.json"
EPISODES_FILE = "meta/episodes.parquet"
# Fixed writer settings, and Parquet stores no timestamps: the same arrays give byte-identical files.
# store_schema keeps the Arrow schema in the file, so pyarrow reads the lists back as fixed-size lists.
_WRITE_OPTIONS = {"compression": "zstd", "compression_level": 3, "row_group_size": 1 << 16, "store_schema": True}

EPISODES_SCHEMA = pa.schema(
    [
        ("episode_index", pa.int32()),
        ("task_index", pa.int16()),
        ("length", pa.int32()),
        ("return", pa.float64()),  # sum of the dense reward
        ("success", pa.bool_()),  # null where the env has no success signal
    ]
)


def _float32_list(size: int) -> pa.DataType:
    # "element" is the item name Parquet reads lists back with; Arrow type equality ignores it
    return pa.list_(pa.field("element", pa.float32()), size)


def transitions_schema(obs_dim: int, action_dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("index", pa.int64()),
            ("episode_index", pa.int32()),
            ("frame_index", pa.int32()),
            ("task_index", pa.int16()),
            ("observation", _float32_list(obs_dim)),
            ("action", _float32_list(action_dim)),
            ("next_observation", _float32_list(obs_dim)),
            ("reward", pa.float32()),
            ("terminated", pa.bool_()),
            ("truncated", pa.bool_()),
        ]
    )


class DatasetError(ValueError):
    """A dataset that is missing, unreadable or inconsistent; the message names file and column or field."""


class Transitions(NamedTuple):
    """The columns of transitions.parquet as numpy arrays, N rows."""

    index: np.ndarray  # [N] int64, 0..N-1
    episode_index: np.ndarray  # [N] int32, episodes 0, 1, 2, ... each one contiguous block of rows
    frame_index: np.ndarray  # [N] int32, 0..length-1 within an episode
    task_index: np.ndarray  # [N] int16, a key of DatasetInfo.tasks
    observation: np.ndarray  # [N, obs_dim] float32
    action: np.ndarray  # [N, action_dim] float32
    next_observation: np.ndarray  # [N, obs_dim] float32
    reward: np.ndarray  # [N] float32, dense
    terminated: np.ndarray  # [N] bool
    truncated: np.ndarray  # [N] bool


# info.json fields and their JSON types; "extra" (a free object) is optional.
_INFO_FIELDS = {
    "schema_version": "int",
    "setting": "str",
    "tasks": "object",
    "observation_shape": "list of int",
    "action_shape": "list of int",
    "action_low": "list of number",
    "action_high": "list of number",
    "policy_checkpoint_sha256": "str or null",
    "seed": "int",
    "num_transitions": "int",
    "num_episodes": "int",
    "extra": "object",
}


def _is_json(value: Any, kind: str) -> bool:
    if kind.endswith(" or null"):
        return value is None or _is_json(value, kind.removesuffix(" or null"))
    if kind.startswith("list of "):
        return isinstance(value, list) and all(_is_json(v, kind.removeprefix("list of ")) for v in value)
    types = {"int": int, "number": (int, float), "str": str, "object": dict}[kind]
    return isinstance(value, types) and not isinstance(value, bool)


def _finite(number: float) -> bool:
    """A finite float; JSON integers too large for a float (10**400) are not."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _task_value(value: Any) -> Any:
    """A task as JSON holds it: numbers as int or float (numpy ones too), names and records as they are."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _task_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_task_value(v) for v in value]
    raise DatasetError(f"task {value!r}: expected a number, null, a name or a record (a JSON value)")


def _is_task(value: Any) -> bool:
    """A JSON task value: null, a finite number, a name, or a record (object or array) of such values and booleans."""
    if value is None or isinstance(value, str):
        return True
    if _is_json(value, "number"):
        return _finite(value)
    if isinstance(value, dict):
        return all(isinstance(v, bool) or _is_task(v) for v in value.values())
    if isinstance(value, list):
        return all(isinstance(v, bool) or _is_task(v) for v in value)
    return False


@dataclass
class DatasetInfo:
    """meta/info.json. `tasks` maps task_index to the setting's task value: a number or None (the paper's
    settings: a physics parameter), a name or a record (pipeline.envs.registry)."""

    setting: str
    tasks: dict[int, Any]
    observation_shape: list[int]
    action_shape: list[int]
    action_low: list[float]
    action_high: list[float]
    policy_checkpoint_sha256: str | None
    seed: int
    num_transitions: int
    num_episodes: int
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # accept tuples and numpy values, so an info compares equal to itself after a JSON round trip
        # in task_index order: JSON keeps keys as sorted strings ("10" before "2")
        self.tasks = {int(k): _task_value(v) for k, v in sorted(self.tasks.items(), key=lambda kv: int(kv[0]))}
        self.observation_shape = [int(x) for x in self.observation_shape]
        self.action_shape = [int(x) for x in self.action_shape]
        self.action_low = [float(x) for x in self.action_low]
        self.action_high = [float(x) for x in self.action_high]

    def to_json(self) -> dict[str, Any]:
        """The JSON object of meta/info.json (task_index keys as strings)."""
        obj = dataclasses.asdict(self)
        obj["tasks"] = {str(k): v for k, v in self.tasks.items()}
        return {"schema_version": SCHEMA_VERSION, **obj}

    @classmethod
    def from_json(cls, obj: Any, source: str | Path = INFO_FILE) -> DatasetInfo:
        """Parse and check an info.json object; errors name `source` and the field."""
        if not isinstance(obj, dict):
            raise DatasetError(f"{source}: expected a JSON object, found {type(obj).__name__}")
        missing = [f"missing field '{k}'" for k in _INFO_FIELDS if k not in obj and k != "extra"]
        unknown = [f"unknown field '{k}'" for k in sorted(set(obj) - set(_INFO_FIELDS))]
        if missing or unknown:
            raise DatasetError(f"{source}: " + "; ".join(missing + unknown))
        for key, kind in _INFO_FIELDS.items():
            if key in obj and not _is_json(obj[key], kind):
                raise DatasetError(f"{source}: field '{key}': expected {kind}, found {obj[key]!r}")
        if obj["schema_version"] != SCHEMA_VERSION:
            found = obj["schema_version"]
            raise DatasetError(f"{source}: field 'schema_version': expected {SCHEMA_VERSION}, found {found}")
        for key, value in obj["tasks"].items():
            if not (key.isascii() and key.isdigit()) or not _is_task(value):
                expected = "task_index -> finite number, null, name or record"
                raise DatasetError(f"{source}: field 'tasks': expected {expected}, found {key!r}: {value!r}")
        info = cls(**{k: v for k, v in obj.items() if k != "schema_version"})
        _check_info(info, source)
        return info


def _check_info(info: DatasetInfo, source: str | Path) -> None:
    def fail(key: str, expected: str, found: Any) -> DatasetError:
        return DatasetError(f"{source}: field '{key}': expected {expected}, found {found!r}")

    for key in ("observation_shape", "action_shape"):
        shape = getattr(info, key)
        if len(shape) != 1 or shape[0] < 1:
            raise fail(key, "one dimension >= 1, like [11]", shape)
    for key in ("action_low", "action_high"):
        bound = getattr(info, key)
        if len(bound) != info.action_shape[0] or not all(map(math.isfinite, bound)):
            raise fail(key, f"{info.action_shape[0]} finite numbers (action_shape)", bound)
    if not all(low <= high for low, high in zip(info.action_low, info.action_high, strict=True)):
        raise fail("action_low", f"<= action_high {info.action_high} in every dimension", info.action_low)
    if not info.tasks or not all(0 <= k <= np.iinfo(np.int16).max for k in info.tasks):
        raise fail("tasks", "at least one task, task_index in 0..32767", info.tasks)
    for key in ("num_transitions", "num_episodes"):
        if getattr(info, key) < 1:
            raise fail(key, ">= 1", getattr(info, key))


def _first(mask: np.ndarray) -> int | None:
    rows = np.flatnonzero(mask)
    return int(rows[0]) if len(rows) else None


def _episode_starts(episode_index: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, episode_index[1:] != episode_index[:-1]])


def _check_transitions(t: Transitions, info: DatasetInfo, file: Path) -> None:
    """Content checks shared by writer and reader; errors name `file` and the column."""

    def fail(column: str, what: str) -> DatasetError:
        return DatasetError(f"{file}: column '{column}': {what}")

    n, obs_dim, action_dim = info.num_transitions, info.observation_shape[0], info.action_shape[0]
    widths = {"observation": obs_dim, "action": action_dim, "next_observation": obs_dim}
    for f in transitions_schema(obs_dim, action_dim):
        value, arrow_type = getattr(t, f.name), f.type
        dtype = np.dtype((arrow_type.value_type if f.name in widths else arrow_type).to_pandas_dtype())
        shape = (n, widths[f.name]) if f.name in widths else (n,)
        if not isinstance(value, np.ndarray) or value.dtype != dtype or value.shape != shape:
            found = f"{value.dtype} {list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise fail(f.name, f"expected {dtype} {list(shape)} (shapes from {INFO_FILE}), found {found}")
    for name in ("observation", "action", "next_observation", "reward"):
        if (row := _first(~np.isfinite(getattr(t, name)).reshape(n, -1).all(axis=1))) is not None:
            raise fail(name, f"non-finite value at row {row}")
    if (row := _first(t.index != np.arange(n))) is not None:
        raise fail("index", f"expected 0..{n - 1}, found {t.index[row]} at row {row}")
    ep = t.episode_index
    if (row := _first(~np.isin(np.diff(ep, prepend=-1), (0, 1)))) is not None:
        raise fail("episode_index", f"expected episodes 0, 1, 2, ... in contiguous rows, found {ep[row]} at row {row}")
    starts = _episode_starts(ep)
    if len(starts) != info.num_episodes:
        raise fail("episode_index", f"{len(starts)} episodes; {INFO_FILE} field 'num_episodes': {info.num_episodes}")
    frame = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    if (row := _first(t.frame_index != frame)) is not None:
        raise fail("frame_index", f"expected {frame[row]} at row {row} (episode {ep[row]}), found {t.frame_index[row]}")
    same = ep[1:] == ep[:-1]  # rows i and i + 1 are in one episode
    if (row := _first(same & (t.task_index[1:] != t.task_index[:-1]))) is not None:
        raise fail("task_index", f"changes within episode {ep[row]} at row {row + 1}")
    if unknown := sorted(set(np.unique(t.task_index).tolist()) - set(info.tasks)):
        raise fail("task_index", f"values {unknown} are not in {INFO_FILE} field 'tasks' ({sorted(info.tasks)})")
    last = np.r_[~same, True]
    if (row := _first((t.terminated | t.truncated) != last)) is not None:
        what = "does not end with either set" if last[row] else "has one set before its last frame"
        raise DatasetError(f"{file}: columns 'terminated', 'truncated': episode {ep[row]} {what} (row {row})")
    if (row := _first(same & (t.next_observation[:-1] != t.observation[1:]).any(axis=1))) is not None:
        raise fail("next_observation", f"row {row} differs from 'observation' of row {row + 1} (episode {ep[row]})")


def episodes_table(transitions: Transitions, success: np.ndarray | None = None) -> pa.Table:
    """The rows of meta/episodes.parquet; `success` is a bool per episode, or None: no success signal."""
    starts = _episode_starts(transitions.episode_index)
    lengths = np.diff(np.r_[starts, len(transitions.episode_index)])
    returns = np.add.reduceat(transitions.reward.astype(np.float64), starts) if len(starts) else np.zeros(0)
    if success is None:
        success_column = pa.nulls(len(starts), pa.bool_())
    elif not isinstance(success, np.ndarray) or success.dtype != bool or success.shape != (len(starts),):
        found = f"{success.dtype} {list(success.shape)}" if isinstance(success, np.ndarray) else type(success).__name__
        raise DatasetError(f"{EPISODES_FILE}: column 'success': expected bool [{len(starts)}], found {found}")
    else:
        success_column = pa.array(success, pa.bool_())
    columns = [transitions.episode_index[starts], transitions.task_index[starts], lengths, returns, success_column]
    arrays = [pa.array(c, t) for c, t in zip(columns, EPISODES_SCHEMA.types, strict=True)]
    return pa.Table.from_arrays(arrays, schema=EPISODES_SCHEMA)


def write_dataset(root: Path, transitions: Transitions, info: DatasetInfo, success: np.ndarray | None = None) -> None:
    """Check, then write a dataset folder at `root`, replacing an older dataset there.

    The folder is built beside `root` and renamed onto it once complete (`pipeline.atomic.atomic_folder`),
    so `root` never holds a partial dataset; a failed write removes its temp folder and keeps the old one.
    """
    root = Path(root)
    _check_info(info, root / INFO_FILE)
    _check_transitions(transitions, info, root / TRANSITIONS_FILE)
    episodes = episodes_table(transitions, success)
    schema = transitions_schema(info.observation_shape[0], info.action_shape[0])
    columns = [
        pa.FixedSizeListArray.from_arrays(pa.array(getattr(transitions, f.name).reshape(-1)), type=f.type)
        if pa.types.is_fixed_size_list(f.type)
        else pa.array(getattr(transitions, f.name), f.type)
        for f in schema
    ]
    table = pa.Table.from_arrays(columns, schema=schema)
    if root.exists() and not (root.is_dir() and ((root / INFO_FILE).is_file() or not any(root.iterdir()))):
        raise DatasetError(f"{root}: exists and is neither a dataset nor empty; not replacing it")
    with atomic_folder(root) as tmp:
        (tmp / "meta").mkdir()
        pq.write_table(table, tmp / TRANSITIONS_FILE, **_WRITE_OPTIONS)
        pq.write_table(episodes, tmp / EPISODES_FILE, **_WRITE_OPTIONS)
        write_json(tmp / INFO_FILE, info.to_json())


def _read_table(path: Path, expected: pa.Schema) -> pa.Table:
    """Read a Parquet file whose Arrow schema must equal `expected` (names, order, types)."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    try:
        found = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a readable Parquet file ({e})") from e
    problems = [f"missing column '{f.name}' ({f.type})" for f in expected if f.name not in found.names]
    problems += [f"unexpected column '{name}'" for name in found.names if name not in expected.names]
    duplicates = sorted({name for name in found.names if found.names.count(name) > 1})
    problems += [f"duplicate column '{name}'" for name in duplicates]
    for f in expected:
        if f.name in found.names and f.name not in duplicates and not (got := found.field(f.name).type).equals(f.type):
            source = f" (list size from {INFO_FILE})" if pa.types.is_fixed_size_list(f.type) else ""
            problems.append(f"column '{f.name}': expected {f.type}{source}, found {got}")
    if not problems and found.names != expected.names:
        problems.append(f"columns in order {found.names}, expected {expected.names}")
    if problems:
        raise DatasetError(f"{path}: wrong schema: " + "; ".join(problems))
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a readable Parquet file ({e})") from e


def _numpy(table: pa.Table, name: str, file: Path) -> np.ndarray:
    column = table.column(name)
    if column.null_count:
        raise DatasetError(f"{file}: column '{name}': {column.null_count} null value(s)")
    array = column.combine_chunks()
    if not pa.types.is_fixed_size_list(array.type):
        return array.to_numpy(zero_copy_only=False, writable=True)
    values = array.flatten()
    if values.null_count:
        raise DatasetError(f"{file}: column '{name}': {values.null_count} null list item(s)")
    return values.to_numpy(zero_copy_only=False, writable=True).reshape(len(array), array.type.list_size)


def read_dataset(root: Path, *, setting: str | None = None) -> tuple[Transitions, DatasetInfo]:
    """Read and check a dataset folder; `setting`, if given, must be the dataset's."""
    root = Path(root)
    info_path = root / INFO_FILE
    if not info_path.is_file():
        raise DatasetError(f"{info_path}: missing")
    try:
        obj = json.loads(info_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise DatasetError(f"{info_path}: not valid JSON ({e})") from e
    info = DatasetInfo.from_json(obj, info_path)
    if setting is not None and info.setting != setting:
        raise DatasetError(f"{info_path}: field 'setting': expected {setting!r}, found {info.setting!r}")

    path = root / TRANSITIONS_FILE
    table = _read_table(path, transitions_schema(info.observation_shape[0], info.action_shape[0]))
    if table.num_rows != info.num_transitions:
        n = info.num_transitions
        raise DatasetError(f"{path}: {table.num_rows} rows, {INFO_FILE} field 'num_transitions' says {n}")
    transitions = Transitions(*(_numpy(table, name, path) for name in Transitions._fields))
    _check_transitions(transitions, info, path)

    path = root / EPISODES_FILE
    episodes, expected = _read_table(path, EPISODES_SCHEMA), episodes_table(transitions)
    if episodes.num_rows != expected.num_rows:
        n = expected.num_rows
        raise DatasetError(f"{path}: {episodes.num_rows} rows, expected one per episode of {TRANSITIONS_FILE}: {n}")
    for name in ("episode_index", "task_index", "length", "return"):
        found, want = (t.column(name).to_numpy(zero_copy_only=False) for t in (episodes, expected))
        bad = ~np.isclose(found, want, rtol=1e-6, atol=1e-9) if name == "return" else found != want
        if (row := _first(bad)) is not None:
            what = f"row {row}: expected {want[row]} from {TRANSITIONS_FILE}, found {found[row]}"
            raise DatasetError(f"{path}: column '{name}': {what}")
    return transitions, info
