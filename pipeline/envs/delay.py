"""Delayed (sparse) reward: the paper's section 5.2 protocol (Oh et al. 2018)."""

from __future__ import annotations

import numbers
from typing import Any, SupportsFloat

import gymnasium
import gymnasium.utils


class DelayedReward(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Accumulate the dense reward and emit the sum every `delay`-th step of an episode.

    The pending sum is also flushed when the episode terminates or is truncated, so over
    any complete episode the emitted rewards sum to the dense rewards. `delay` 0 or 1 means
    dense reward. The dense reward of each step is always in `info["dense_reward"]`, so
    evaluation can report the dense return whatever the delay.
    """

    def __init__(self, env: gymnasium.Env, delay: int):
        if isinstance(delay, bool) or not isinstance(delay, numbers.Integral) or delay < 0:
            raise ValueError(f"delay must be an integer >= 0 (0 or 1 = dense), got {delay!r}")
        gymnasium.utils.RecordConstructorArgs.__init__(self, delay=delay)
        gymnasium.Wrapper.__init__(self, env)
        self.delay = int(delay)
        self._pending = 0.0
        self._steps = 0

    def reset(self, **kwargs: Any):
        self._pending = 0.0
        self._steps = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        dense = float(reward)
        info["dense_reward"] = dense
        if self.delay <= 1:
            return obs, dense, terminated, truncated, info
        self._pending += dense
        self._steps += 1
        emitted: SupportsFloat = 0.0
        if terminated or truncated or self._steps % self.delay == 0:
            emitted, self._pending = self._pending, 0.0
        return obs, emitted, terminated, truncated, info
