"""The sync's counters and gauges, as :meth:`ClusterIndex.stats` reports them."""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["SyncStats"]

# Counters every report carries, zero until something happens.
COUNTERS = (
    "events_received",   # watch events read off the sockets (bookmarks not counted)
    "events_applied",    # of those, the ones that changed what the index holds
    "events_skipped",    # not newer than what the index holds: duplicates, stale replays
    "bookmarks",
    "lists",             # full lists made (every kind), the first ones included
    "relists",           # lists after a kind's first: 410 Gone, a list that failed
    "watches",           # watch requests opened
    "watch_errors",      # watches that ended in an error (dropped, refused, 429, 5xx...)
    "dead_streams",      # watches closed for silence (no event, no bookmark)
    "backoffs",          # waits before asking again
    "bad_objects",       # ImageCaches that could not be read (kept out of the index)
    "profile_errors",    # eci-profile versions that could not be read (the last good kept)
    "resolve_failures",  # layer resolutions that failed (retried with backoff)
    "resolved",          # images whose layers arrived after their cache entered
)
LAG_WINDOW = 4096  # recent batches the p99 lag is taken over


class SyncStats:
    """Thread-safe counters, the lag of recent batches and the gauges set by their owners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self._lag = 0.0
        self._lag_max = 0.0
        self._backoff_seconds = 0.0
        self._problems: deque[str] = deque(maxlen=20)

    def add(self, name: str, n: int = 1) -> None:
        """Count ``n`` more of ``name`` (one of :data:`COUNTERS`)."""
        with self._lock:
            self._counts[name] += n

    def waited(self, seconds: float) -> None:
        """Count one backoff of ``seconds``."""
        with self._lock:
            self._counts["backoffs"] += 1
            self._backoff_seconds += seconds

    def lag(self, seconds: float) -> None:
        """Record how long a batch waited between its socket and the index."""
        with self._lock:
            self._lag = seconds
            self._lag_max = max(self._lag_max, seconds)
            self._lags.append(seconds)

    def problem(self, message: str) -> None:
        """Keep a message for an operator (the last twenty are kept)."""
        with self._lock:
            self._problems.append(message)

    def problems(self) -> list[str]:
        """The recent problems, oldest first."""
        with self._lock:
            return list(self._problems)

    def snapshot(self) -> dict[str, float]:
        """The counters and lag figures, as numbers."""
        with self._lock:
            report: dict[str, float] = dict(self._counts)
            lags = sorted(self._lags)
            report["lag_seconds"] = self._lag
            report["lag_max_seconds"] = self._lag_max
            report["lag_p99_seconds"] = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags \
                else 0.0
            report["backoff_seconds"] = self._backoff_seconds
        return report
