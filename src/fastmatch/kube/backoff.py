"""How long to wait before asking the API server again after a failure.

client-go's reflector numbers (``wait.Backoff`` under its ``BackoffManager``):
0.8 s, doubling, jittered, capped at 30 s, and back to 0.8 s once two minutes
have passed without a failure.  The jitter keeps a fleet of watchers that lost
the same API server from coming back at the same instant.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays that grow on each failure and reset after a healthy stretch.

    ``next()`` is the delay to wait now: ``initial`` doubled per failure since the last
    reset, times a random factor in ``[1, 1 + jitter]``, never above ``cap``.  A call that
    comes more than ``reset_after`` seconds after the previous one starts from ``initial``
    again.  Not thread-safe: one reflector owns one.
    """

    __slots__ = ("_clock", "_delay", "_last", "_random", "cap", "factor", "initial", "jitter",
                 "reset_after")

    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.cap, self.factor = initial, cap, factor
        self.jitter, self.reset_after = jitter, reset_after
        self._clock, self._random = clock, rng
        self._delay = initial
        self._last: float | None = None

    def next(self) -> float:
        """The delay to wait before the next try, in seconds."""
        now = self._clock()
        if self._last is not None and now - self._last > self.reset_after:
            self._delay = self.initial
        self._last = now
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.cap)
        return min(delay * (1.0 + self.jitter * self._random()), self.cap)

    def reset(self) -> None:
        """Start again from ``initial`` (as after ``reset_after`` of health)."""
        self._delay = self.initial
        self._last = None
