"""Building an index of 1k to 100k caches, loading a saved one, and its memory.

``extra_info`` holds, per size: microseconds per cache to build
(``build_us_per_cache``), index bytes per cache, and bytes per (cache, layer)
pair (``bytes_per_pair``: the core's arrays, ``CacheIndex.nbytes()``
over ``.pairs``), so that the flatness of the cost per cache from 1k to 100k
can be read off one run.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

import fastmatch as fm

import workloads

SIZES = workloads.CACHE_SIZES


def _memory(index: fm.CacheIndex) -> dict[str, float]:
    nbytes, pairs, caches = index.nbytes(), index.pairs, index.ready
    return {
        "pairs": pairs,
        "bytes_per_pair": round(nbytes / max(pairs, 1), 2),
        "bytes_per_cache": round(nbytes / max(caches, 1), 1),
        "pairs_per_cache": round(pairs / max(caches, 1), 2),
    }


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1000}k")
def test_build(benchmark: Any, disabled: bool, size: int) -> None:
    benchmark.group = "build an index"
    n = workloads.scaled(size, disabled)
    caches = workloads.cluster(n).caches
    gc.collect()
    index = benchmark.pedantic(fm.CacheIndex, args=(caches,), rounds=1 if disabled else 3)
    assert len(index) == n
    benchmark.extra_info.update(_memory(index))
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        benchmark.extra_info["build_us_per_cache"] = round(stats.median / n * 1e6, 3)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1000}k")
def test_memory_per_pair(disabled: bool, size: int, record_property: Any) -> None:
    """Not timed: the index's bytes per (cache, layer) pair and per cache, by size."""
    n = workloads.scaled(size, disabled)
    memory = _memory(workloads.index(n))
    for key, value in memory.items():
        record_property(key, value)
    assert memory["pairs"] > 0
    assert memory["bytes_per_pair"] < 64  # the target is 24; this only catches a blow-up


def test_load_saved(benchmark: Any, disabled: bool, tmp_path: Path) -> None:
    """Load a saved index of 100k caches (``CacheIndex.save`` / ``CacheIndex.load``)."""
    benchmark.group = "load a saved index of 100k caches"
    n = workloads.scaled(100_000, disabled)
    index = workloads.index(n)
    path = tmp_path / "index.npz"
    index.save(path)
    benchmark.extra_info["file_bytes"] = path.stat().st_size
    loaded = benchmark.pedantic(fm.CacheIndex.load, args=(path,), rounds=1 if disabled else 5)
    assert len(loaded) == n
    cluster = workloads.cluster(n)
    for pod in workloads.default_pods(n, 16):
        assert loaded.match(pod, now=cluster.now) == index.match(pod, now=cluster.now)
