"""The benchmark workloads, built lazily from :mod:`fastmatch.synthetic` and kept per process.

Sizes (issue 3): 1k, 10k and 100k caches; 10k to 1M pods.  Every workload is
deterministic: :data:`SEED` fixes the cluster, and the caches of a cluster do
not depend on how many pods are drawn from it (pods are drawn after the
caches), so ``pods(10_000, 1_000_000)`` runs against the very caches of
``index(10_000)``.

The distributions behind the clusters (layers per image, layer sizes, base
images, tags, sidecars, cache sizes, phases, lifecycle) and their sources are
documented in :mod:`fastmatch.synthetic`.

When benchmarking is disabled (``pytest --benchmark-disable``, as CI runs the
suite) each size is scaled down by :func:`scaled`, so that every benchmark
still runs once as a test, quickly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import fastmatch as fm
from fastmatch.synthetic import SyntheticCluster, synthetic_cluster

__all__ = [
    "CACHE_SIZES",
    "POD_SIZES",
    "SEED",
    "churn_caches",
    "cluster",
    "default_pods",
    "index",
    "pods",
    "policies",
    "scaled",
]

SEED = 20260101
CACHE_SIZES = (1_000, 10_000, 100_000)
POD_SIZES = (10_000, 100_000, 1_000_000)
# Pods per one-pod sample: the one-pod benchmarks cycle through them, so the
# median and p99 are over a realistic mix of pods, not one lucky pod.
SAMPLE_PODS = 256

# With benchmarking disabled, sizes are divided by this (at least 50 caches).
_DISABLED_DIVISOR = 50


def scaled(n: int, disabled: bool) -> int:
    """``n``, or a small stand-in for it when benchmarks only run as tests."""
    return max(50, n // _DISABLED_DIVISOR) if disabled else n


@functools.cache
def cluster(n_caches: int, n_pods: int = 0) -> SyntheticCluster:
    """The synthetic cluster of ``n_caches`` caches with ``n_pods`` pods (all policies)."""
    return synthetic_cluster(n_caches, n_pods, seed=SEED)


@functools.cache
def index(n_caches: int) -> fm.CacheIndex:
    """A :class:`fastmatch.CacheIndex` over the caches of ``cluster(n_caches)``.

    Shared by the benchmarks of one process: they must not change it.
    """
    return fm.CacheIndex(cluster(n_caches).caches)


@functools.cache
def _default_cluster(n_caches: int, n_pods: int) -> SyntheticCluster:
    return synthetic_cluster(n_caches, n_pods, seed=SEED, policy_shares=(0.0, 0.0, 0.0))


def default_pods(n_caches: int, n_pods: int = SAMPLE_PODS) -> list[list[fm.Image]]:
    """``n_pods`` pods for the caches of ``cluster(n_caches)``, all with the default policy."""
    return _default_cluster(n_caches, n_pods).pods


def pods(n_caches: int, n_pods: int) -> list[list[fm.Image]]:
    """``n_pods`` pods for the caches of ``cluster(n_caches)`` (see :func:`policies`)."""
    return cluster(n_caches, n_pods).pods


def policies(n_caches: int, n_pods: int) -> Sequence[fm.MatchPolicy]:
    """The policies of :func:`pods`: mostly default, some perfect-match, match-count, named."""
    return cluster(n_caches, n_pods).policies


@functools.cache
def churn_caches(n: int, images_per_cache: int = 5) -> list[fm.ImageCache]:
    """``n`` Ready caches of ``images_per_cache`` images each, built beforehand.

    Their images are the catalog of ``cluster(10_000)``, so they share layers
    as the cluster's caches do; their ids are new (``imc-churn-…``), so an
    upsert adds a cache and a remove takes it away again.
    """
    catalog = cluster(10_000).images
    created = cluster(10_000).now
    step = 7919  # a prime: consecutive caches hold unrelated images
    out = []
    for i in range(n):
        held = [
            catalog[(i * images_per_cache + k) * step % len(catalog)]
            for k in range(images_per_cache)
        ]
        out.append(fm.ImageCache(f"imc-churn-{i:08d}", held, created=created))
    return out
