"""The shared epoch loop: learning-rate phases, update counts, per-epoch mean losses, schedule checks."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.epochs import Schedule, phase_lr, run_epochs

pytestmark = pytest.mark.usefixtures("one_thread")


def rates_over(rates: list[float], epochs: int) -> list[float]:
    return [phase_lr(rates, epoch, epochs) for epoch in range(epochs)]


def test_phases_split_the_epochs_equally() -> None:
    assert rates_over([3.0, 2.0, 1.0], 6) == [3.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    assert rates_over([3.0, 2.0], 4) == [3.0, 3.0, 2.0, 2.0]


def test_uneven_split_keeps_phases_in_order_and_within_one_epoch_of_each_other() -> None:
    got = rates_over([3.0, 2.0, 1.0], 7)
    assert got == sorted(got, reverse=True) and got[0] == 3.0 and got[-1] == 1.0
    counts = [got.count(rate) for rate in (3.0, 2.0, 1.0)]
    assert sum(counts) == 7 and max(counts) - min(counts) <= 1


def test_one_rate_is_used_for_every_epoch() -> None:
    assert rates_over([0.5], 5) == [0.5] * 5
    assert rates_over([0.5], 1) == [0.5]


def test_more_phases_than_epochs_gives_each_epoch_the_phase_it_starts_in() -> None:
    assert rates_over([4.0, 3.0, 2.0, 1.0], 2) == [4.0, 2.0]
    assert rates_over([3.0, 2.0, 1.0], 1) == [3.0]


def test_epochs_past_the_schedule_keep_the_last_rate() -> None:
    assert phase_lr([3.0, 2.0, 1.0], 6, 6) == 1.0
    assert phase_lr([3.0, 2.0, 1.0], 9, 6) == 1.0


def test_update_is_called_epochs_times_updates_with_its_epoch() -> None:
    calls: list[int] = []

    def update(epoch: int) -> dict[str, torch.Tensor]:
        calls.append(epoch)
        return {"loss": torch.tensor(1.0)}

    run_epochs(Schedule(epochs=3, updates_per_epoch=4), update, name="test")
    assert calls == [0] * 4 + [1] * 4 + [2] * 4


def test_returns_and_reports_the_mean_of_each_loss_per_epoch() -> None:
    values = iter(range(100))

    def update(epoch: int) -> dict[str, torch.Tensor]:
        v = float(next(values))
        return {"a": torch.tensor(v), "b": torch.tensor(-2.0 * v + epoch)}

    logged: list[tuple[int, dict[str, float]]] = []
    history = run_epochs(
        Schedule(epochs=2, updates_per_epoch=3), update, name="test", on_epoch=lambda e, m: logged.append((e, m))
    )
    # epoch 0 sees values 0, 1, 2; epoch 1 sees 3, 4, 5
    assert history == [{"a": pytest.approx(1.0), "b": pytest.approx(-2.0)}, {"a": 4.0, "b": pytest.approx(-7.0)}]
    assert logged == list(enumerate(history))
    assert all(isinstance(v, float) for epoch in history for v in epoch.values())


def test_on_epoch_runs_after_its_epoch_and_before_the_next() -> None:
    events: list[str] = []

    def update(epoch: int) -> dict[str, torch.Tensor]:
        events.append(f"update {epoch}")
        return {"loss": torch.tensor(0.0)}

    run_epochs(Schedule(2, 2), update, name="test", on_epoch=lambda epoch, _: events.append(f"log {epoch}"))
    assert events == ["update 0", "update 0", "log 0", "update 1", "update 1", "log 1"]


@pytest.mark.parametrize("schedule", [Schedule(0, 5), Schedule(5, 0), Schedule(-1, 1)])
def test_rejects_an_empty_schedule(schedule: Schedule) -> None:
    def update(epoch: int) -> dict[str, torch.Tensor]:
        raise AssertionError("no update should run")

    with pytest.raises(ValueError, match="epochs and updates_per_epoch must be >= 1"):
        run_epochs(schedule, update, name="test")


def test_shares_set_the_phase_lengths_the_authors_one_sixth_one_third_one_half() -> None:
    rates = [phase_lr([3.0, 2.0, 1.0], epoch, 30, [1.0, 2.0, 3.0]) for epoch in range(30)]
    assert rates == [3.0] * 5 + [2.0] * 10 + [1.0] * 15
    assert [phase_lr([3.0, 2.0, 1.0], e, 12, [1.0, 2.0, 3.0]) for e in range(12)] == [3.0] * 2 + [2.0] * 4 + [1.0] * 6


def test_equal_shares_are_the_equal_split() -> None:
    for epochs in range(1, 13):
        assert [phase_lr([3.0, 2.0, 1.0], e, epochs, [1.0, 1.0, 1.0]) for e in range(epochs)] == rates_over(
            [3.0, 2.0, 1.0], epochs
        )


@pytest.mark.parametrize("shares", [[1.0, 2.0], [1.0, 0.0, 1.0]])
def test_shares_need_one_positive_share_per_rate(shares: list[float]) -> None:
    with pytest.raises(ValueError, match="share"):
        phase_lr([3.0, 2.0, 1.0], 0, 6, shares)


def test_heldout_losses_join_each_epochs_means() -> None:
    calls = []
    history = run_epochs(
        Schedule(2, 3),
        lambda epoch: {"fit": torch.tensor(1.0)},
        name="x",
        heldout=lambda: calls.append(1) or {"fit_heldout": 2.0},
    )
    assert history == [{"fit": 1.0, "fit_heldout": 2.0}] * 2 and len(calls) == 2
