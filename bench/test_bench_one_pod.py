"""One pod against 1k, 10k and 100k caches: fastmatch beside every alternative.

Each group (``one pod vs N caches``) holds fastmatch's ``CacheIndex.match``,
the four alternatives of :mod:`alternatives` and the posting-read reference
point (a C loop that only reads the posting lists the pod touches).  Every
round matches the next pod of a fixed sample of realistic pods (default
policy), so the median and ``p99_us`` are over a mix of pods.  Before an
alternative is timed, its decisions on every sampled pod are checked against
fastmatch's.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import pytest

import fastmatch as fm

import workloads
from alternatives import ALTERNATIVES, check_same_decisions, roaring_available
from timing import per_call

SIZES = workloads.CACHE_SIZES
# Pods in the sample: all of them are checked against fastmatch, and the
# reference takes about 5 ms per 1k caches per pod.
SAMPLE = {1_000: 256, 10_000: 256, 100_000: 64}
# Rough time budget per timed alternative, in seconds.
BUDGET = 3.0
IMPLS = ["fastmatch", "postread", *ALTERNATIVES]


def _n(size: int, disabled: bool) -> tuple[int, int]:
    return workloads.scaled(size, disabled), (8 if disabled else SAMPLE[size])


@functools.cache
def _alternative(name: str, n_caches: int, n_pods: int) -> Any:
    cluster = workloads.cluster(n_caches)
    alt = ALTERNATIVES[name](cluster.caches)
    pods = workloads.default_pods(n_caches, n_pods)
    check_same_decisions(alt, workloads.index(n_caches), pods, None, cluster.now)
    return alt


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1000}k")
def test_one_pod(benchmark: Any, disabled: bool, size: int, impl: str) -> None:
    n_caches, n_pods = _n(size, disabled)
    benchmark.group = f"one pod vs {size // 1000}k caches"
    cluster = workloads.cluster(n_caches)
    now = cluster.now
    pods = workloads.default_pods(n_caches, n_pods)
    index = workloads.index(n_caches)
    if impl == "fastmatch":
        policy = fm.MatchPolicy()

        def run(pod: Any) -> object:
            return index.match(pod, policy, now=now)

        inputs: list[Any] = list(pods)
    elif impl == "postread":
        import postread

        reader, ids = postread.reader_for(index)
        inputs = [postread.pod_layers(pod, ids) for pod in pods]
        run = reader.read
        benchmark.extra_info["postings_per_pod"] = sorted(reader.postings(x) for x in inputs)[
            len(inputs) // 2
        ]
    else:
        if impl == "roaring" and not roaring_available():
            pytest.skip("pyroaring is not installed")
        alt = _alternative(impl, n_caches, n_pods)

        def run(pod: Any) -> object:
            return alt.match(pod, now=now)

        inputs = list(pods)
    start = time.perf_counter()
    for pod in inputs[:4]:
        run(pod)
    each = (time.perf_counter() - start) / 4
    rounds = 1 if disabled else int(min(20 * len(inputs), max(5, BUDGET / max(each, 1e-7))))
    per_call(benchmark, run, inputs, rounds, warmup=0 if disabled else min(len(inputs), rounds))
