"""The policy-transfer rule on hand-made return histories."""

from __future__ import annotations

from pipeline.methods.mcat.transfer_rule import LEARNED, Choice, RecentReturns, TransferRuleConfig, choose_policy

CONFIG = TransferRuleConfig(window=3, max_age_per_task=100, margin=0.5)


def source_of(history: RecentReturns, target: int, step: int) -> int | None:
    return choose_policy(history, target, step).source


def history(own: dict[int, list[float]], step: int = 0) -> RecentReturns:
    h = RecentReturns(n_tasks=4, config=CONFIG)
    for task, returns in own.items():
        for r in returns:
            h.record(task, LEARNED, r, step)
    return h


def test_learned_policy_without_any_history_or_better_source() -> None:
    assert source_of(RecentReturns(4, CONFIG), target=0, step=0) is LEARNED
    # 140 < 100 + 0.5 * 100: not clearly better
    assert source_of(history({0: [100.0], 1: [140.0], 2: [90.0], 3: [149.0]}), target=0, step=0) is LEARNED
    assert source_of(history({0: [100.0]}), target=0, step=0) is LEARNED  # no other task has returns
    # exactly at the margin is not clearly better; just past it is (and for a negative own return too)
    assert source_of(history({0: [100.0], 1: [150.0]}), target=0, step=0) is LEARNED
    assert source_of(history({0: [100.0], 1: [150.5]}), target=0, step=0) == 1
    assert source_of(history({0: [-100.0], 1: [-50.0]}), target=0, step=0) is LEARNED
    assert source_of(history({0: [-100.0], 1: [-49.5]}), target=0, step=0) == 1


def test_untried_sources_best_first_then_self_transfer_then_the_best_that_beats_learned() -> None:
    h = history({0: [100.0], 1: [400.0], 2: [90.0], 3: [200.0]})
    assert source_of(h, target=0, step=1) == 1  # the best source first
    h.record(0, 1, 120.0, step=1)
    assert source_of(h, target=0, step=2) == 3  # the other source
    h.record(0, 3, 180.0, step=2)
    assert source_of(h, target=0, step=3) == 0  # self-transfer, once
    h.record(0, 0, 90.0, step=3)
    assert source_of(h, target=0, step=4) == 3  # transferred from 3 (180) beats learned (100) and from 1 (120)
    h.record(0, 3, 10.0, step=4)
    h.record(0, 3, 20.0, step=4)  # from 3 now averages 70 < learned 100; from 1 (120) is the best left
    assert source_of(h, target=0, step=5) == 1
    h.record(0, 1, 0.0, step=5)  # from 1: 60; nothing transferred beats learned any more
    assert source_of(h, target=0, step=6) is LEARNED


def test_negative_returns_use_the_absolute_margin() -> None:
    h = history({0: [-100.0], 1: [-60.0], 2: [-30.0]})  # a source must beat -100 + 50 = -50
    assert source_of(h, target=0, step=0) == 2


def test_old_returns_are_forgotten() -> None:
    h = history({0: [100.0], 1: [400.0]}, step=0)
    h.record(0, 1, 500.0, step=0)
    h.record(0, 0, 50.0, step=0)
    assert source_of(h, target=0, step=10) == 1  # transferred 500 beats learned 100
    h.record(0, LEARNED, 100.0, step=390)
    h.record(1, LEARNED, 400.0, step=390)
    # at step 450 the transferred returns from step 0 are older than 100 x 4 tasks: tried again
    assert source_of(h, target=0, step=450) == 1
    assert h.mean(0, 1, step=450) is None and h.mean(0, 1, step=400) == 500.0


def test_window_keeps_only_the_last_episodes() -> None:
    h = RecentReturns(2, CONFIG)
    for r in (1.0, 2.0, 3.0, 4.0):
        h.record(0, LEARNED, r, step=0)
    assert h.mean(0, LEARNED, step=0) == 3.0  # the last 3


def test_trials_are_marked_trials_and_following_needs_the_follow_margin() -> None:
    h = history({0: [100.0], 1: [400.0]})
    assert choose_policy(h, target=0, step=1) == Choice(1, "trial")
    h.record(0, 1, 120.0, step=1)
    assert choose_policy(h, target=0, step=2) == Choice(0, "trial")  # self-transfer
    h.record(0, 0, 90.0, step=2)
    assert choose_policy(h, target=0, step=3) == Choice(1, "follow")  # 120 beats 100: the paper's rule
    strict = RecentReturns(4, TransferRuleConfig(window=3, max_age_per_task=100, margin=0.5, follow_margin=0.5))
    for task, source, value in ((0, LEARNED, 100.0), (1, LEARNED, 400.0), (0, 1, 120.0), (0, 0, 90.0)):
        strict.record(task, source, value, step=2)
    assert choose_policy(strict, target=0, step=3) == Choice(LEARNED, "learned")  # 120 < 100 + 0.5 x 100
    strict.record(0, 1, 200.0, step=3)  # mean from 1 now 160 > 150
    assert choose_policy(strict, target=0, step=3) == Choice(1, "follow")
