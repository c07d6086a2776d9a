"""Per-call timing for pytest-benchmark: one call per round, median and p99 recorded."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from typing import Any


def per_call(
    benchmark: Any,
    fn: Callable[[Any], object],
    inputs: Sequence[Any],
    rounds: int,
    warmup: int = 0,
) -> None:
    """Time ``fn(x)`` one call per round, cycling through ``inputs``; record median and p99.

    One call per round (no iterations) so that the round times are the
    distribution of per-pod latencies: ``extra_info`` gets ``p99_us`` and
    ``median_us`` from them.
    """
    cycle = itertools.cycle(inputs)

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        return (next(cycle),), {}

    benchmark.pedantic(fn, setup=setup, rounds=max(1, rounds), warmup_rounds=warmup, iterations=1)
    stats = getattr(benchmark, "stats", None)
    data = getattr(getattr(stats, "stats", None), "data", None)
    if data:
        ordered = sorted(data)
        benchmark.extra_info["median_us"] = round(statistics.median(ordered) * 1e6, 3)
        benchmark.extra_info["p99_us"] = round(ordered[int(0.99 * (len(ordered) - 1))] * 1e6, 3)
