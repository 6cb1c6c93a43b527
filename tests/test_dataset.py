"""Parquet transition datasets: round trip, determinism, continuity, rejection by name, atomic writes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.dataset import (
    EPISODES_FILE,
    INFO_FILE,
    TRANSITIONS_FILE,
    DatasetError,
    DatasetInfo,
    Transitions,
    episodes_table,
    read_dataset,
    write_dataset,
)
from pipeline.envs import make_env

SETTING = "hopper-size"
TASKS = {0: 0.05, 1: 0.06}
EPISODES_PER_TASK = 3
Data = tuple[Transitions, DatasetInfo, np.ndarray]  # transitions, info, success per episode


def rollout() -> Data:
    """Random-action hopper episodes (30-step limit) over two tasks, stored as the collector would. Gymnasium v5's
    hopper, which ends when it falls (the authors' never ends early), so that both episode endings occur."""
    rows: dict[str, list] = {name: [] for name in Transitions._fields}
    episode = 0
    for task_index, task in TASKS.items():
        env = make_env(SETTING, task, max_episode_steps=30, definition="gymnasium_v5")
        env.action_space.seed(task_index)
        for k in range(EPISODES_PER_TASK):
            obs, _ = env.reset(seed=10 * task_index + k)
            frame, done = 0, False
            while not done:
                action = env.action_space.sample()
                next_obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                reward = info["dense_reward"]
                values = (episode, frame, task_index, obs, action, next_obs, reward, terminated, truncated)
                for name, value in zip(Transitions._fields[1:], values, strict=True):
                    rows[name].append(value)
                obs, frame = next_obs, frame + 1
            episode += 1
        space = env.action_space
    n = len(rows["reward"])
    dtypes = dict(episode_index=np.int32, frame_index=np.int32, task_index=np.int16, reward=np.float32)
    dtypes |= dict(observation=np.float32, action=np.float32, next_observation=np.float32)
    dtypes |= dict(terminated=bool, truncated=bool)
    transitions = Transitions(index=np.arange(n), **{k: np.array(rows[k], dtype=t) for k, t in dtypes.items()})
    info = DatasetInfo(
        setting=SETTING,
        tasks=TASKS,
        observation_shape=transitions.observation.shape[1:],
        action_shape=space.shape,
        action_low=space.low,
        action_high=space.high,
        policy_checkpoint_sha256=None,
        seed=0,
        num_transitions=n,
        num_episodes=episode,
        extra={"policy": "random"},
    )
    return transitions, info, np.arange(episode) % 2 == 0


@pytest.fixture(scope="module")
def data() -> Data:
    return rollout()


@pytest.fixture
def root(tmp_path: Path, data: Data) -> Path:
    write_dataset(tmp_path / SETTING, *data)
    return tmp_path / SETTING


def test_rollout_has_both_episode_endings(data: Data) -> None:
    transitions, _, _ = data
    assert transitions.terminated.any() and transitions.truncated.any()  # hopper falls, or hits the 30-step limit


def test_round_trip_returns_identical_arrays(root: Path, data: Data) -> None:
    transitions, info, _ = data
    read, read_info = read_dataset(root, setting=SETTING)
    for name in Transitions._fields:
        a, b = getattr(read, name), getattr(transitions, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert read_info == info


def test_same_arrays_give_byte_identical_files(tmp_path: Path, data: Data) -> None:
    write_dataset(tmp_path / "a", *data)
    write_dataset(tmp_path / "b", *data)
    for name in (TRANSITIONS_FILE, EPISODES_FILE, INFO_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_next_observation_is_the_next_steps_observation(root: Path) -> None:
    t, _ = read_dataset(root)
    same_episode = t.episode_index[1:] == t.episode_index[:-1]
    assert same_episode.sum() == len(t.index) - t.episode_index[-1] - 1
    assert np.array_equal(t.next_observation[:-1][same_episode], t.observation[1:][same_episode])
    assert not np.array_equal(t.next_observation[:-1][~same_episode], t.observation[1:][~same_episode])  # resets


def test_episodes_table_matches_transitions(root: Path, data: Data) -> None:
    transitions, info, success = data
    episodes = pq.read_table(root / EPISODES_FILE)
    assert episodes.equals(episodes_table(transitions, success))
    assert episodes.num_rows == info.num_episodes
    lengths = np.bincount(transitions.episode_index)
    assert episodes["length"].to_pylist() == lengths.tolist()
    returns = [transitions.reward[transitions.episode_index == e].astype(np.float64).sum() for e in range(len(lengths))]
    np.testing.assert_allclose(episodes["return"].to_numpy(), returns, rtol=1e-12)
    assert episodes["success"].to_pylist() == success.tolist()
    assert episodes_table(transitions)["success"].null_count == info.num_episodes  # no success signal: null


def test_polars_alone_reads_the_arrays(root: Path, data: Data) -> None:
    polars = pytest.importorskip("polars")  # a dev dependency: checks docs/datasets.md's claim; unused by the pipeline
    transitions, _, _ = data
    frame = polars.read_parquet(root / "transitions.parquet")
    assert np.array_equal(frame["observation"].to_numpy(), transitions.observation)
    assert np.array_equal(frame["action"].to_numpy(), transitions.action)
    assert np.array_equal(frame["terminated"].to_numpy(), transitions.terminated)
    episodes = polars.read_parquet(root / "meta" / "episodes.parquet")
    assert episodes["length"].to_list() == np.bincount(transitions.episode_index).tolist()


def test_duckdb_alone_queries_the_dataset(root: Path, data: Data) -> None:
    duckdb = pytest.importorskip("duckdb")  # a dev dependency, as polars
    transitions, _, _ = data
    path = (root / "transitions.parquet").as_posix()
    rows = duckdb.sql(f"SELECT episode_index, sum(reward), count(*) FROM '{path}' GROUP BY 1 ORDER BY 1").fetchall()
    assert [r[2] for r in rows] == np.bincount(transitions.episode_index).tolist()
    ((first,),) = duckdb.sql(f"SELECT observation FROM '{path}' WHERE \"index\" = 0").fetchall()
    assert np.array_equal(np.asarray(first, dtype=np.float32), transitions.observation[0])


def test_pyarrow_alone_reads_everything(root: Path, data: Data) -> None:
    transitions, info, _ = data
    table = pq.read_table(root / "transitions.parquet")
    assert table.schema.field("observation").type == pa.list_(pa.float32(), 11)
    for name in Transitions._fields:
        column = table[name].combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            array = column.flatten().to_numpy().reshape(len(table), -1)
        else:
            array = column.to_numpy(zero_copy_only=False)
        assert np.array_equal(array, getattr(transitions, name)), name
    meta = json.loads((root / "meta" / "info.json").read_text())
    assert meta["schema_version"] == 1 and meta["tasks"] == {"0": 0.05, "1": 0.06}
    assert meta["num_transitions"] == len(table) == info.num_transitions
    assert pq.read_table(root / "meta" / "episodes.parquet").num_rows == info.num_episodes


def _rewrite(path: Path, edit: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(edit(pq.read_table(path)), path)


def _set(name: str, edit: Callable[[np.ndarray], None]) -> Callable[[pa.Table], pa.Table]:
    """A table edit that changes column `name` through numpy (lists as [N, dim])."""

    def apply(table: pa.Table) -> pa.Table:
        column = table[name].combine_chunks()
        fixed = pa.types.is_fixed_size_list(column.type)
        values = column.flatten().to_numpy().reshape(len(table), -1) if fixed else column.to_numpy(zero_copy_only=False)
        values = values.copy()
        edit(values)
        array = pa.FixedSizeListArray.from_arrays(values.reshape(-1), type=column.type) if fixed else pa.array(values)
        return table.set_column(table.schema.get_field_index(name), name, array)

    return apply


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_info(**changes: object) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / INFO_FILE
        obj = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                del obj[key]
            else:
                obj[key] = value
        path.write_text(json.dumps(obj))

    return apply


def _in_middle_of_episode(values: np.ndarray) -> None:
    values[5, 0] += 1.0  # row 5 is inside the first episode (episodes last > 5 steps)


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (corrupt the dataset folder, file named in the error, column or field named in the error)
    "truncated transitions": (lambda r: _truncate(r / TRANSITIONS_FILE), "transitions.parquet", "Parquet"),
    "truncated episodes": (lambda r: _truncate(r / EPISODES_FILE), "episodes.parquet", "Parquet"),
    "reward as float64": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, lambda t: t.set_column(7, "reward", t["reward"].cast(pa.float64()))),
        "transitions.parquet",
        "'reward'",
    ),
    "column dropped": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, lambda t: t.drop_columns(["truncated"])),
        "transitions.parquet",
        "'truncated'",
    ),
    "column renamed": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, lambda t: t.rename_columns({"action": "actions"})),
        "transitions.parquet",
        "'action'",
    ),
    "column duplicated": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, lambda t: t.append_column("reward", t["reward"])),
        "transitions.parquet",
        "duplicate column 'reward'",
    ),
    "columns reordered": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, lambda t: t.select(t.column_names[::-1])),
        "transitions.parquet",
        "columns in order ['truncated'",
    ),
    "observation size vs info": (_edit_info(observation_shape=[12]), "transitions.parquet", "'observation'"),
    "info missing field": (_edit_info(seed=None), "info.json", "'seed'"),
    "info wrong schema_version": (_edit_info(schema_version=2), "info.json", "'schema_version'"),
    "info wrong type": (_edit_info(num_episodes="6"), "info.json", "'num_episodes'"),
    "info not json": (lambda r: (r / INFO_FILE).write_text("{"), "info.json", "JSON"),
    "info task not finite": (_edit_info(tasks={"0": float("nan"), "1": 0.06}), "info.json", "'tasks'"),
    "info task out of range": (_edit_info(tasks={"0": 10**400, "1": 0.06}), "info.json", "'tasks'"),
    "info task index not a number": (_edit_info(tasks={"\u00b2": 0.05, "1": 0.06}), "info.json", "'tasks'"),
    "info action bounds crossed": (
        _edit_info(action_low=[1.0, 1.0, 1.0], action_high=[-1.0, -1.0, -1.0]),
        "info.json",
        "'action_low'",
    ),
    "continuity broken": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, _set("observation", _in_middle_of_episode)),
        "transitions.parquet",
        "'next_observation'",
    ),
    "index gap": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, _set("index", lambda v: v.__iadd__(np.arange(len(v)) >= 7))),
        "transitions.parquet",
        "'index'",
    ),
    "terminated mid-episode": (
        lambda r: _rewrite(r / TRANSITIONS_FILE, _set("terminated", lambda v: v.__setitem__(2, True))),
        "transitions.parquet",
        "'terminated'",
    ),
    "episode length": (
        lambda r: _rewrite(r / EPISODES_FILE, _set("length", lambda v: v.__setitem__(0, v[0] + 1))),
        "episodes.parquet",
        "'length'",
    ),
    "missing file": (lambda r: (r / EPISODES_FILE).unlink(), "episodes.parquet", "missing"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_bad_dataset_is_rejected_by_name(root: Path, case: str) -> None:
    corrupt, file, column = CORRUPTIONS[case]
    read_dataset(root)
    corrupt(root)
    with pytest.raises(DatasetError) as error:
        read_dataset(root)
    assert file in str(error.value) and column in str(error.value), str(error.value)


def test_info_keeps_task_order_past_ten_tasks() -> None:
    """JSON sorts task_index keys as strings ("10" before "2"); the info reads them back in index order."""
    tasks = {k: 0.05 + 0.01 * k for k in range(12)}
    info = DatasetInfo("hopper-size", tasks, [11], [3], [-1.0] * 3, [1.0] * 3, None, 0, 12, 12)
    text = json.dumps(info.to_json(), sort_keys=True)
    assert text.index('"10"') < text.index('"2"')
    back = DatasetInfo.from_json(json.loads(text))
    assert list(back.tasks) == list(range(12)) and list(back.tasks.values()) == list(tasks.values())


def test_info_holds_tasks_that_are_names_or_records() -> None:
    """A setting's tasks may be names or records (pipeline.envs.registry), as Meta-World's will be."""
    tasks = {0: "push-v3", 1: {"goal": "left", "mass": 1.5, "hard": True}, 2: None, 3: 2}
    info = DatasetInfo("some-setting", tasks, [11], [3], [-1.0] * 3, [1.0] * 3, None, 0, 12, 4)
    back = DatasetInfo.from_json(json.loads(json.dumps(info.to_json())))
    assert back == info and back.tasks == tasks
    for bad in ({"mass": float("nan")}, ["push-v3", float("inf")], True):
        obj = info.to_json() | {"tasks": {"0": bad}}
        with pytest.raises(
            DatasetError, match="field 'tasks': expected task_index -> finite number, null, name or record"
        ):
            DatasetInfo.from_json(obj)


def test_wrong_setting_is_rejected_by_name(root: Path) -> None:
    with pytest.raises(DatasetError, match=r"info\.json: field 'setting': expected 'ant-cripple'"):
        read_dataset(root, setting="ant-cripple")


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("'observation'", lambda t: t._replace(observation=t.observation.astype(np.float64))),
        ("'next_observation'", lambda t: t._replace(next_observation=t.next_observation[::-1].copy())),
        ("'terminated', 'truncated'", lambda t: t._replace(truncated=np.zeros_like(t.truncated))),
        ("'task_index'", lambda t: t._replace(task_index=t.task_index + np.int16(5))),
    ],
)
def test_writer_rejects_bad_transitions(tmp_path: Path, data: Data, field: str, edit: Callable) -> None:
    transitions, info, success = data
    with pytest.raises(DatasetError, match=rf"transitions\.parquet: columns? {field}"):
        write_dataset(tmp_path / SETTING, edit(transitions), info, success)
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_counts_and_success(tmp_path: Path, data: Data) -> None:
    transitions, info, success = data
    with pytest.raises(DatasetError, match=r"'episode_index'.*'num_episodes'"):
        write_dataset(tmp_path / SETTING, transitions, dataclasses.replace(info, num_episodes=2), success)
    with pytest.raises(DatasetError, match=r"episodes\.parquet: column 'success'"):
        write_dataset(tmp_path / SETTING, transitions, info, success[:-1])
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_previous_dataset(root: Path, data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    transitions, info, success = data
    before = {name: (root / name).read_bytes() for name in (TRANSITIONS_FILE, EPISODES_FILE, INFO_FILE)}
    write_table, calls = pq.write_table, []

    def failing_write_table(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        write_table(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing_write_table)
    changed = dataclasses.replace(info, seed=1)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(root, transitions, changed, success)
    assert len(calls) == 2
    assert {name: (root / name).read_bytes() for name in before} == before
    assert list(root.parent.iterdir()) == [root]  # no temp folder left behind
    calls.clear()
    with pytest.raises(OSError, match="disk full"):
        write_dataset(root.parent / "new", transitions, info, success)
    assert list(root.parent.iterdir()) == [root]

    monkeypatch.undo()
    write_dataset(root, transitions, changed, success)  # a complete write replaces the old dataset
    assert read_dataset(root)[1].seed == 1
    assert list(root.parent.iterdir()) == [root]


def test_writer_does_not_replace_a_folder_that_is_not_a_dataset(tmp_path: Path, data: Data) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="neither a dataset nor empty"):
        write_dataset(tmp_path, *data)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
