"""Which policy acts on a training task next: the learned one, or another task's policy through H.

The rule of the authors' development code ("good_to_transfer", docs/algorithms/mcat.md): per task,
keep the returns of recent episodes, by the policy that acted (the learned policy, or the
policy transferred from source task j; j = the task itself is "self-transfer"). Sources are
the tasks whose learned policy does clearly better than the target's own:
mean(j) > mean(i) + margin * |mean(i)|. On task i: try each untried source once (best first),
then self-transfer once (these trials act without exploration noise unless `trial_noise`), then act
with the best transferred policy if its recent mean beats the learned policy's by `follow_margin`,
else with the learned policy. Returns older than `max_age` env steps
are forgotten, so a source that stopped being better stops being used.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from pipeline.methods.mcat.config import TransferRuleConfig

LEARNED = None  # the "source" of an episode run by the task's own learned policy


class RecentReturns:
    """Returns of recent episodes per (task, source), with the env step at which each ended."""

    def __init__(self, n_tasks: int, config: TransferRuleConfig):
        self.n_tasks, self.config = n_tasks, config
        self.max_age = config.max_age_per_task * n_tasks
        self._returns: dict[tuple[int, int | None], deque[tuple[int, float]]] = {}

    def record(self, task: int, source: int | None, episode_return: float, step: int) -> None:
        """`source` None: the task's learned policy acted; j: task j's policy through the translator."""
        key = (task, source)
        if key not in self._returns:
            self._returns[key] = deque(maxlen=self.config.window)
        self._returns[key].append((step, float(episode_return)))

    def mean(self, task: int, source: int | None, step: int) -> float | None:
        """Mean of the kept returns not older than max_age at `step`; None when there are none."""
        kept = [r for s, r in self._returns.get((task, source), ()) if step - s <= self.max_age]
        return float(np.mean(kept)) if kept else None

    def to_json(self) -> list:
        return [[task, source, [list(e) for e in entries]] for (task, source), entries in self._returns.items()]

    def load_json(self, entries: list) -> None:
        self._returns = {}
        for task, source, kept in entries:
            for step, episode_return in kept:
                self.record(task, source, episode_return, step)

    def tried(self, task: int, source: int | None, step: int) -> bool:
        """Whether `source` has recent returns on `task`; forgotten ones count as untried (tried again)."""
        return self.mean(task, source, step) is not None


class Choice(NamedTuple):
    """Who acts on a task's next episode: the learned policy, or task `source`'s policy through H."""

    source: int | None  # LEARNED (None), or the source task j (j = the target itself: self-transfer)
    kind: str  # "learned"; "trial": a candidate's first recent episode on the target; "follow": the best tried one


def choose_policy(history: RecentReturns, target: int, step: int) -> Choice:
    """The policy that acts on `target`'s next episode (paper 3.4; the rule of the authors' code).

    Candidate sources: tasks whose learned policy's recent mean beats the target's by `margin` x |target's|.
    Each candidate is tried once (best first), then self-transfer once; then the best transferred policy
    is followed if its recent mean beats the learned policy's by `follow_margin` x |learned's| (the paper:
    any amount, 0; the authors' code: their margin, 0.5)."""
    own = history.mean(target, LEARNED, step)
    if own is None:
        return Choice(LEARNED, "learned")
    config = history.config
    means = {j: history.mean(j, LEARNED, step) for j in range(history.n_tasks) if j != target}
    sources = sorted(
        (j for j, m in means.items() if m is not None and m > own + config.margin * abs(own)), key=lambda j: -means[j]
    )
    if not sources:
        return Choice(LEARNED, "learned")
    for j in [*sources, target]:  # each candidate once, best first, then self-transfer once
        if not history.tried(target, j, step):
            return Choice(j, "trial")
    transferred = {j: history.mean(target, j, step) for j in [*sources, target]}  # all recent: all tried
    best = max(transferred, key=lambda j: transferred[j])
    if transferred[best] > own + config.follow_margin * abs(own):
        return Choice(best, "follow")
    return Choice(LEARNED, "learned")
