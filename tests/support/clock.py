"""A clock the test moves: minute boundaries, refills and expiry without sleeping."""

from __future__ import annotations

import threading


class FakeClock:
    """Callable like :func:`time.time`; starts at ``start`` and moves only when told."""

    def __init__(self, start: float) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def set(self, seconds: float) -> None:
        with self._lock:
            self.now = seconds


# 1,800,000,000 s is a whole minute (30,000,000 x 60): :00 of some minute in 2027.
MINUTE_BOUNDARY = 1_800_000_000.0
