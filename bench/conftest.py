"""Shared fixtures of the fastmatch benchmarks.

Run the timing suite with ``PYTHONPATH=src pytest bench -p no:randomly``
(see ``bench/README.md``); CI runs every benchmark once as a plain test with
``pytest bench --benchmark-disable``, on scaled-down workloads.
"""

from __future__ import annotations

import os

# NumPy's OpenBLAS threads spin on the cores between calls; on a 2-core machine
# they would steal the second core from match_many and the churn thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import itertools
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import pytest


@pytest.fixture(scope="session")
def disabled(request: pytest.FixtureRequest) -> bool:
    """Whether benchmarks only run as tests (``--benchmark-disable``): use small workloads."""
    return bool(request.config.getoption("benchmark_disable", False))


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
