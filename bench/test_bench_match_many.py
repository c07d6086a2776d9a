"""``match_many``: 100k pods against 10k caches on 1 and on 2 threads (and 10k, 1M pods).

The pods carry the synthetic cluster's mix of policies (mostly default, some
perfect-match, match-count and named caches).  The scoring runs without the
GIL on ``threads`` threads; the speed-up of 2 threads over 1 is in the group
``match_many 100k pods vs 10k caches``.
"""

from __future__ import annotations

from typing import Any

import pytest

import workloads

CACHES = 10_000
CASES = [(100_000, 1), (100_000, 2), (10_000, 1), (10_000, 2), (1_000_000, 2)]


@pytest.mark.parametrize(
    ("n_pods", "threads"), CASES, ids=[f"{p // 1000}k-pods-{t}-threads" for p, t in CASES]
)
def test_match_many(benchmark: Any, disabled: bool, n_pods: int, threads: int) -> None:
    n_caches = workloads.scaled(CACHES, disabled)
    n = workloads.scaled(n_pods, disabled) if disabled else n_pods
    benchmark.group = f"match_many {n_pods // 1000}k pods vs {CACHES // 1000}k caches"
    index = workloads.index(n_caches)
    cluster = workloads.cluster(n_caches, n)
    pods, policies, now = cluster.pods, cluster.policies, cluster.now
    rounds = 1 if disabled or n_pods >= 1_000_000 else 3
    results = benchmark.pedantic(
        index.match_many,
        args=(pods, policies),
        kwargs={"now": now, "threads": threads},
        rounds=rounds,
        iterations=1,
    )
    assert len(results) == n
    benchmark.extra_info["pods"] = n
    benchmark.extra_info["hits"] = sum(r.outcome == "use" for r in results)
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        benchmark.extra_info["us_per_pod"] = round(stats.median / n * 1e6, 3)
