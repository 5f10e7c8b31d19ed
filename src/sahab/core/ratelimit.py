"""Counting events per key over a sliding minute, in this process."""

from __future__ import annotations

import collections
from collections.abc import Hashable


class SlidingWindow:
    """At most ``limit`` events per key in any ``window`` seconds.

    A fixed per-minute counter lets twice the limit through around the turn of a minute
    (the last seconds of one and the first of the next); a sliding window never does.
    Keys idle for a whole window are forgotten, so memory stays bounded by the keys
    active in the last window."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.events: dict[Hashable, collections.deque[float]] = {}

    def allow(self, key: Hashable, limit: int, now: float) -> bool:
        """Count one event of ``key`` at ``now`` unless ``limit`` are already in the
        window ending at ``now``."""
        if len(self.events) > 10_000:
            self._forget_idle(now)
        times = self.events.setdefault(key, collections.deque())
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        self.events = {key: times for key, times in self.events.items()
                       if times and now - times[-1] <= self.window}
