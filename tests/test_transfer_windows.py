"""Training windows: one task's rows, deltas and episode positions; windows never cross an episode.

The hand-made dataset interleaves the tasks' episodes (task 0, 1, 0, 1, 0) with known lengths; each
episode is a random walk, so every state is distinct and next_observation[t] == observation[t + 1].
Expected windows are built row by row from the numpy arrays, independently of the module's indexing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.dataset import DatasetInfo, Transitions, write_dataset
from pipeline.transfer.windows import Window, Windows, split_heldout, task_data

OBS, ACT = 3, 2
EPISODES = [(0, 5), (1, 3), (0, 9), (1, 12), (0, 6)]  # (task_index, length), in row order
K, M = 2, 3

pytestmark = pytest.mark.usefixtures("one_thread")


def make_transitions(episodes: list[tuple[int, int]] = EPISODES, seed: int = 0) -> Transitions:
    rng = np.random.default_rng(seed)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in Transitions._fields}
    for episode, (task, length) in enumerate(episodes):
        walk = np.cumsum(rng.normal(size=(length + 1, OBS)), axis=0).astype(np.float32)
        end = np.zeros(length, bool)
        end[-1] = True
        values = {
            "episode_index": np.full(length, episode, np.int32),
            "frame_index": np.arange(length, dtype=np.int32),
            "task_index": np.full(length, task, np.int16),
            "observation": walk[:-1],
            "action": rng.uniform(-1, 1, (length, ACT)).astype(np.float32),
            "next_observation": walk[1:],
            "reward": rng.normal(size=length).astype(np.float32),
            "terminated": np.zeros(length, bool),
            "truncated": end,
        }
        for name, value in values.items():
            columns[name].append(value)
    n = sum(length for _, length in episodes)
    return Transitions(index=np.arange(n), **{k: np.concatenate(v) for k, v in columns.items() if k != "index"})


def task_rows(t: Transitions, task: int) -> np.ndarray:
    return np.flatnonzero(t.task_index == task)


def expected_window(t: Transitions, task: int, start: int, history: int, future: int) -> Window:
    """The window at the task's local row `start`, from the dataset arrays."""
    rows = task_rows(t, task)
    past, ahead = rows[start - history : start], rows[start : start + future]
    steps = np.concatenate([t.next_observation - t.observation, t.action], axis=1)
    return Window(
        torch.from_numpy(steps[past][None]),
        torch.from_numpy(t.observation[ahead][None]),
        torch.from_numpy(t.action[ahead][None]),
        torch.from_numpy((t.next_observation - t.observation)[ahead][None]),
    )


def expected_starts(t: Transitions, task: int, history: int, future: int) -> list[int]:
    """Local rows t whose rows t-K..t+M-1 exist and all lie in t's episode."""
    episode = t.episode_index[task_rows(t, task)]
    return [
        s for s in range(history, len(episode) - future + 1) if (episode[s - history : s + future] == episode[s]).all()
    ]


@pytest.fixture(scope="module")
def data() -> Transitions:
    return make_transitions()


def test_hand_made_data_is_a_valid_dataset(data: Transitions, tmp_path: Path) -> None:
    info = DatasetInfo(
        "halfcheetah-armature", {0: 0.1, 1: 0.5}, [OBS], [ACT], [-1.0] * ACT, [1.0] * ACT, None, 0, 35, 5
    )
    write_dataset(tmp_path / "ds", data, info)


@pytest.mark.parametrize("task", [0, 1])
def test_task_data_holds_only_the_task_rows(data: Transitions, task: int) -> None:
    d = task_data(data, task)
    rows = task_rows(data, task)
    lengths = [length for k, length in EPISODES if k == task]
    assert len(d.states) == sum(lengths)
    assert d.states.dtype == d.actions.dtype == d.deltas.dtype == torch.float32
    assert d.frame.dtype == d.steps_left.dtype == torch.int64
    np.testing.assert_array_equal(d.states.numpy(), data.observation[rows])
    np.testing.assert_array_equal(d.actions.numpy(), data.action[rows])
    np.testing.assert_array_equal(d.deltas.numpy(), data.next_observation[rows] - data.observation[rows])
    np.testing.assert_array_equal(d.frame.numpy(), np.concatenate([np.arange(n) for n in lengths]))
    np.testing.assert_array_equal(d.steps_left.numpy(), np.concatenate([np.arange(n, 0, -1) for n in lengths]))


def test_task_data_does_not_alias_the_dataset(data: Transitions) -> None:
    t = make_transitions()
    d = task_data(t, 0)
    d.states.add_(1.0)
    d.actions.add_(1.0)
    np.testing.assert_array_equal(t.observation, data.observation)
    np.testing.assert_array_equal(t.action, data.action)


def test_task_data_rejects_a_task_absent_from_the_data(data: Transitions) -> None:
    with pytest.raises(ValueError, match="task_index 2"):
        task_data(data, 2)


@pytest.mark.parametrize("task", [0, 1])
@pytest.mark.parametrize(("history", "future"), [(K, M), (1, 1), (4, 5)])
def test_windows_start_wherever_history_and_future_fit_in_the_episode(
    data: Transitions, task: int, history: int, future: int
) -> None:
    windows = Windows(task_data(data, task), history, future)
    starts = windows.starts.tolist()
    assert starts == expected_starts(data, task, history, future)
    episode = data.episode_index[task_rows(data, task)]
    for s in starts:  # no window crosses an episode boundary
        assert len(set(episode[s - history : s + future].tolist())) == 1


def test_window_counts_per_episode(data: Transitions) -> None:
    # task 0: episodes of 5, 9, 6 -> 5 - K - M + 1 = 1, 5 and 2 starts; task 1: 3 (none) and 12 (8)
    assert len(Windows(task_data(data, 0), K, M).starts) == 1 + 5 + 2
    assert len(Windows(task_data(data, 1), K, M).starts) == 8


@pytest.mark.parametrize("task", [0, 1])
def test_at_returns_the_history_before_and_the_steps_from_the_start(data: Transitions, task: int) -> None:
    windows = Windows(task_data(data, task), K, M)
    got = windows.at(windows.starts)
    n = len(windows.starts)
    assert got.context.shape == (n, K, OBS + ACT)
    assert got.states.shape == got.deltas.shape == (n, M, OBS)
    assert got.actions.shape == (n, M, ACT)
    for b, s in enumerate(windows.starts.tolist()):
        want = expected_window(data, task, s, K, M)
        for name, value in want._asdict().items():
            torch.testing.assert_close(getattr(got, name)[b : b + 1], value, rtol=0, atol=0, msg=name)


def test_context_is_oldest_first_and_ends_just_before_the_start(data: Transitions) -> None:
    d = task_data(data, 1)
    windows = Windows(d, K, M)
    s = int(windows.starts[0])
    context = windows.at(windows.starts[:1]).context[0]
    for i in range(K):
        torch.testing.assert_close(context[i, :OBS], d.deltas[s - K + i], rtol=0, atol=0)
        torch.testing.assert_close(context[i, OBS:], d.actions[s - K + i], rtol=0, atol=0)


def test_sample_is_deterministic_given_the_generator(data: Transitions) -> None:
    windows = Windows(task_data(data, 0), K, M)
    a = windows.sample(16, torch.Generator().manual_seed(1))
    b = windows.sample(16, torch.Generator().manual_seed(1))
    c = windows.sample(16, torch.Generator().manual_seed(2))
    for name in Window._fields:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.states, c.states)


def test_sample_draws_valid_windows(data: Transitions) -> None:
    d = task_data(data, 0)
    windows = Windows(d, K, M)
    got = windows.sample(64, torch.Generator().manual_seed(0))
    assert got.context.shape == (64, K, OBS + ACT) and got.states.shape == (64, M, OBS)
    for b in range(64):
        start = int(torch.nonzero((d.states == got.states[b, 0]).all(-1)).item())  # states are distinct
        assert start in windows.starts.tolist()
        want = windows.at(torch.tensor([start]))
        for name in Window._fields:
            assert torch.equal(getattr(got, name)[b], getattr(want, name)[0]), name
    assert len(set(got.states[:, 0, 0].tolist())) > 1


def all_contexts(windows: Windows) -> set[tuple[float, ...]]:
    return {tuple(c.flatten().tolist()) for c in windows.at(windows.starts).context}


def test_contexts_without_replacement_when_there_are_enough(data: Transitions) -> None:
    windows = Windows(task_data(data, 1), K, M)
    n = len(windows.starts)
    every = windows.contexts(n, torch.Generator().manual_seed(0))
    assert every.shape == (n, K, OBS + ACT)
    assert {tuple(c.flatten().tolist()) for c in every} == all_contexts(windows)  # each one exactly once
    some = windows.contexts(n - 3, torch.Generator().manual_seed(0))
    assert len({tuple(c.flatten().tolist()) for c in some}) == n - 3
    again = windows.contexts(n - 3, torch.Generator().manual_seed(0))
    assert torch.equal(some, again)


def test_contexts_with_replacement_when_there_are_too_few(data: Transitions) -> None:
    windows = Windows(task_data(data, 1), K, M)
    n = len(windows.starts)
    many = windows.contexts(3 * n, torch.Generator().manual_seed(0))
    assert many.shape == (3 * n, K, OBS + ACT)
    drawn = {tuple(c.flatten().tolist()) for c in many}
    assert drawn <= all_contexts(windows)


def test_rejects_episodes_too_short_for_the_window(data: Transitions) -> None:
    d = task_data(data, 1)  # longest episode: 12 steps
    Windows(d, 6, 6)
    with pytest.raises(ValueError, match="long enough"):
        Windows(d, 6, 7)


@pytest.mark.parametrize(("history", "future"), [(0, 3), (2, 0)])
def test_rejects_empty_history_or_future(data: Transitions, history: int, future: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        Windows(task_data(data, 0), history, future)


@pytest.mark.parametrize(("share", "held_episodes"), [(0.0, 0), (0.1, 1), (0.5, 2), (0.99, 2)])
def test_heldout_split_keeps_whole_episodes_from_the_end_and_never_all(share: float, held_episodes: int) -> None:
    data = task_data(make_transitions(), 0)
    starts = torch.nonzero(data.frame == 0).flatten().tolist()
    train, held = split_heldout(data, share)
    if held_episodes == 0:
        assert held is None and train is data
        return
    cut = starts[len(starts) - held_episodes]
    assert torch.equal(train.states, data.states[:cut]) and torch.equal(held.states, data.states[cut:])
    assert int(held.frame[0]) == 0 and len(train.states) > 0
