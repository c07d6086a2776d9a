"""Churn: cache upserts and removes per second, and matching while another thread applies them.

The caches (5 images each, from the cluster's catalog) are built beforehand,
so only the index's work is timed.  ``upserts_per_s`` and ``removes_per_s``
are in ``extra_info``.  The group ``match under churn`` holds the match
latency on an idle index and while another thread applies upserts and
removes, both paced (a steady stream, as from a Kubernetes watch) and flat out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import fastmatch as fm

import workloads
from timing import per_call

CACHES = 10_000
BATCH = 10_000  # caches upserted, then removed, per round
PACED_OPS_PER_S = 10_000
BATCHED = 100  # caches per CacheIndex.apply in the batched churn, as the cluster sync writes


def _fresh_index(n_caches: int) -> fm.CacheIndex:
    return fm.CacheIndex(workloads.cluster(n_caches).caches)


@pytest.mark.parametrize("op", ["upsert-new", "upsert-replace", "remove"])
def test_churn_rate(benchmark: Any, disabled: bool, op: str) -> None:
    benchmark.group = "churn: 10k operations on a 10k-cache index"
    n_caches = workloads.scaled(CACHES, disabled)
    batch = workloads.churn_caches(workloads.scaled(BATCH, disabled))
    index = _fresh_index(n_caches)
    replaced = [c.replace(size_gib=40) for c in batch] if op == "upsert-replace" else []

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        for cache in batch:
            index.discard(cache.id)
        if op != "upsert-new":
            for cache in batch:
                index.upsert(cache)
        return (), {}

    def run() -> None:
        if op == "remove":
            for cache in batch:
                index.remove(cache.id)
        else:
            for cache in replaced or batch:
                index.upsert(cache)

    benchmark.pedantic(run, setup=setup, rounds=1 if disabled else 7, iterations=1)
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        benchmark.extra_info["ops_per_s"] = round(len(batch) / stats.median)
    assert len(index) == n_caches + (0 if op == "remove" else len(batch))


def _churn(
    index: fm.CacheIndex,
    caches: list[fm.ImageCache],
    stop: threading.Event,
    ops_per_s: float | None,
    counter: list[int],
    batch: int = 0,
) -> None:
    """Upsert then remove ``caches`` in turn until ``stop``, at ``ops_per_s`` or flat out.

    With ``batch``, as the cluster sync writes: ``CacheIndex.apply`` of
    ``batch`` upserts, then of their removes.
    """
    start = time.perf_counter()
    done = 0
    while batch and not stop.is_set():
        for at in range(0, len(caches), batch):
            chunk = caches[at : at + batch]
            index.apply(chunk)
            index.apply((), [cache.id for cache in chunk])
            done += 2 * len(chunk)
            if stop.is_set():
                break
    while not batch and not stop.is_set():
        for cache in caches:
            index.upsert(cache)
            index.remove(cache.id)
            done += 2
            if ops_per_s is not None and done % 20 == 0:
                ahead = done / ops_per_s - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
            if stop.is_set():
                break
    counter.append(done)


class _Churner:
    """A thread applying upserts and removes; :meth:`stop` says how fast it went."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._counter: list[int] = []
        self._started = 0.0

    def start(
        self, index: fm.CacheIndex, caches: list[fm.ImageCache], rate: float | None, batch: int = 0
    ) -> None:
        args = (index, caches, self._stop, rate, self._counter, batch)
        self._thread = threading.Thread(target=_churn, args=args, daemon=True)
        self._started = time.perf_counter()
        self._thread.start()

    def stop(self) -> float:
        """Stop the thread; return the operations per second it applied."""
        if self._thread is None:
            return 0.0
        self._stop.set()
        self._thread.join()
        self._thread = None
        return self._counter[0] / (time.perf_counter() - self._started) if self._counter else 0.0


@pytest.fixture
def churner() -> Iterator[_Churner]:
    handle = _Churner()
    yield handle
    handle.stop()


@pytest.mark.parametrize("churn", ["idle", "paced", "flat-out", "flat-out-batched"])
def test_match_under_churn(benchmark: Any, disabled: bool, churner: _Churner, churn: str) -> None:
    benchmark.group = "match under churn (one pod vs 10k caches)"
    n_caches = workloads.scaled(CACHES, disabled)
    index = _fresh_index(n_caches)
    pods = workloads.default_pods(n_caches, 8 if disabled else 256)
    now = workloads.cluster(n_caches).now
    policy = fm.MatchPolicy()
    if churn != "idle":
        caches = workloads.churn_caches(workloads.scaled(1_000, disabled))
        rate = PACED_OPS_PER_S if churn == "paced" else None
        churner.start(index, caches, rate, BATCHED if churn == "flat-out-batched" else 0)

    def run(pod: Any) -> object:
        return index.match(pod, policy, now=now)

    per_call(benchmark, run, pods, 1 if disabled else 20 * len(pods), warmup=0)
    benchmark.extra_info["churn_ops_per_s"] = round(churner.stop())
