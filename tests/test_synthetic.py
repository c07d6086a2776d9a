"""The synthetic cluster: deterministic, shaped like the published measurements, useful."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import numpy as np
import pytest

import fastmatch as fm
from fastmatch.synthetic import SyntheticCluster, synthetic_cluster


@pytest.fixture(scope="module")
def cluster() -> SyntheticCluster:
    return synthetic_cluster(2000, 10000, seed=7)


def _fingerprint(c: SyntheticCluster) -> list[object]:
    return [
        [(x.id, x.phase, x.created, tuple(i.ref for i in x.images)) for x in c.caches],
        [tuple(i.digest for i in p) for p in c.pods],
        c.policies,
        c.pod_names,
    ]


def test_same_seed_same_cluster_other_seed_other_cluster() -> None:
    a = synthetic_cluster(300, 500, seed=3)
    b = synthetic_cluster(300, 500, seed=3)
    c = synthetic_cluster(300, 500, seed=4)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)


def test_sizes_asked_for(cluster: SyntheticCluster) -> None:
    assert len(cluster.caches) == 2000
    assert len(cluster.pods) == len(cluster.policies) == len(cluster.pod_names) == 10000
    assert len({c.id for c in cluster.caches}) == 2000
    assert synthetic_cluster(0, 0).caches == []


def test_builds_quickly() -> None:
    start = time.perf_counter()
    synthetic_cluster(2000, 10000, seed=1)
    assert time.perf_counter() - start < 5.0  # about 0.15 s on a slow 2-core machine


def test_layers_per_image_follow_docker_hub(cluster: SyntheticCluster) -> None:
    counts = np.array([len(i.layers) for i in cluster.images])
    assert 7 <= np.median(counts) <= 9
    assert 15 <= np.percentile(counts, 90) <= 21


def test_layer_sizes_are_heavy_tailed_like_docker_hub(cluster: SyntheticCluster) -> None:
    sizes = np.array(
        list({layer.digest: layer.size for i in cluster.images for layer in i.layers}.values())
    )
    assert 2.5e6 <= np.median(sizes) <= 6e6
    assert 40e6 <= np.percentile(sizes, 90) <= 95e6
    assert sizes.max() > 1e9  # the tail reaches gigabytes


def test_a_few_base_layers_are_everywhere_most_layers_are_not(cluster: SyntheticCluster) -> None:
    per_layer = Counter(
        d for c in cluster.caches for d in {layer.digest for i in c.images for layer in i.layers}
    )
    shares = sorted((n / len(cluster.caches) for n in per_layer.values()), reverse=True)
    assert shares[0] > 0.3 and shares[4] > 0.15  # a handful of base layers
    assert np.median(shares) < 0.01  # the typical layer is in a few caches at most
    repos = _repos_per_layer(cluster)
    in_one_repo = sum(len(r) == 1 for r in repos.values())
    assert in_one_repo > 0.8 * len(repos)  # most layers belong to one image's repository


def _repos_per_layer(cluster: SyntheticCluster) -> dict[str, set[str]]:
    repos: dict[str, set[str]] = {}
    for image in cluster.images:
        repo = image.ref.rsplit(":", 1)[0]
        for layer in image.layers:
            repos.setdefault(layer.digest, set()).add(repo)
    return repos


def test_tags_of_a_repository_share_most_layers(cluster: SyntheticCluster) -> None:
    by_repo: dict[str, list[fm.Image]] = {}
    for image in cluster.images:
        if image.ref.startswith("registry.example.com/"):
            by_repo.setdefault(image.ref.rsplit(":", 1)[0], []).append(image)
    overlaps = []
    for tags in by_repo.values():
        for older, newer in itertools.pairwise(tags):
            a = {layer.digest for layer in older.layers}
            b = {layer.digest for layer in newer.layers}
            overlaps.append(len(a & b) / len(b))
    assert np.median(overlaps) >= 0.75


def test_caches_hold_1_to_20_images_mostly_few(cluster: SyntheticCluster) -> None:
    n = np.array([len(c.images) for c in cluster.caches])
    assert n.min() >= 1 and n.max() <= 20 and n.max() >= 10
    assert np.mean(n <= 2) > 0.6


def test_pods_have_1_to_4_images_mostly_1(cluster: SyntheticCluster) -> None:
    n = Counter(len(p) for p in cluster.pods)
    assert set(n) == {1, 2, 3, 4}
    assert n[1] > 0.55 * len(cluster.pods)


def test_phases_times_and_expiry(cluster: SyntheticCluster) -> None:
    phases = Counter(c.phase for c in cluster.caches)
    assert phases[fm.Phase.READY] > 0.8 * len(cluster.caches)
    assert phases[fm.Phase.CREATING] > 0 and phases[fm.Phase.FAILED] > 0
    now = cluster.now
    expired = sum(c.expired(now) for c in cluster.caches)
    assert 0.02 * len(cluster.caches) < expired < 0.25 * len(cluster.caches)
    soon = sum(
        1
        for c in cluster.caches
        if not c.expired(now) and c.expires_at is not None and (c.expires_at - now).days < 7
    )
    assert soon > 0
    ages = [(now - c.created).days for c in cluster.caches]
    assert min(ages) < 7 and max(ages) > 120


def test_policies_mix(cluster: SyntheticCluster) -> None:
    kinds = Counter(
        "named"
        if p.cache_id
        else "perfect"
        if p.perfect_match
        else "count"
        if p.match_count
        else "default"
        for p in cluster.policies
    )
    assert kinds["default"] > 0.6 * len(cluster.policies)
    assert kinds["perfect"] > 0 and kinds["count"] > 0 and kinds["named"] > 0
    only_default = synthetic_cluster(50, 200, seed=1, policy_shares=(0, 0, 0))
    assert all(p == fm.MatchPolicy() for p in only_default.policies)


def test_full_hits_partial_hits_and_misses(cluster: SyntheticCluster) -> None:
    idx = fm.CacheIndex(cluster.caches)
    results = idx.match_many(cluster.pods, cluster.policies, now=cluster.now, threads=1)
    kinds = Counter(
        "reject"
        if r.outcome == "reject"
        else "miss"
        if r.outcome == "none"
        else "full"
        if r.perfect
        else "partial"
        for r in results
    )
    n = len(results)
    assert kinds["full"] > 0.4 * n
    assert kinds["partial"] > 0.03 * n
    assert kinds["miss"] > 0.05 * n
    assert kinds["reject"] > 0  # a named cache that is not Ready


def test_objects_are_shared_not_copied(cluster: SyntheticCluster) -> None:
    catalog = {id(i) for i in cluster.images}
    assert all(id(i) in catalog for c in cluster.caches for i in c.images)
    assert all(id(i) in catalog for p in cluster.pods for i in p)
