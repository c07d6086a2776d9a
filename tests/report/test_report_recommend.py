"""The caches to create (greedy maximum coverage) and to delete, on cases whose answer is known."""

from __future__ import annotations

import itertools
import random

import pytest

import fastmatch as fm
from fastmatch.report import GREEDY_GUARANTEE, recommend_create, recommend_delete

from report_helpers import MB, T0, cache, image, layer, pods, report_of


def refs(recommendation):
    return sorted(i.ref.split("/")[1].split(":")[0] for i in recommendation.images)


# -- create ---------------------------------------------------------------------


def test_greedy_by_bytes_picks_the_few_large_pods_over_the_many_small_ones():
    # Ten pods of a 1 MB image, two of a 100 MB one: by pod count the small image
    # wins, by bytes still pulled (what a cache saves) the large one does.
    small = image("small", layer(1, 1))
    large = image("large", layer(2, 100))
    report = report_of([], [*pods("a", [small], 10), *pods("b", [large], 2)], max_create=1)
    [best] = report.create
    assert refs(best) == ["large"]
    assert (best.pods, best.bytes) == (2, 200 * MB)
    assert best.size_gib == 30  # ECI's auto-created size


def test_a_bundle_that_holds_two_workloads_images_serves_both_of_them():
    # Workload w needs a and b; v needs a alone: a cache of {a, b} serves both, so with
    # one cache allowed it is chosen and counts both workloads' pods.
    a, b = image("a", layer(1, 50)), image("b", layer(2, 10))
    report = report_of([], [*pods("w", [a, b], 3), *pods("v", [a], 4)], max_create=1)
    [best] = report.create
    assert refs(best) == ["a", "b"]
    assert (best.pods, best.bytes) == (7, 3 * 60 * MB + 4 * 50 * MB)


def test_every_image_set_once_best_first_and_nothing_that_serves_nothing_more():
    a, b, c = image("a", layer(1, 30)), image("b", layer(2, 20)), image("c", layer(3, 10))
    requests = [*pods("x", [a]), *pods("y", [b], 2), *pods("z", [c], 5), *pods("x2", [a])]
    report = report_of([], requests)
    # Two workloads of image a (60 MB between them) make one candidate, before c's five
    # small pods (50 MB), before b (40 MB).
    assert [refs(r) for r in report.create] == [["a"], ["c"], ["b"]]
    assert [(r.pods, r.bytes) for r in report.create] == [
        (2, 60 * MB), (5, 50 * MB), (2, 40 * MB)]


def test_perfect_hits_rejected_pods_and_named_caches_are_no_demand():
    a, b = image("a", layer(1, 30)), image("b", layer(2, 20))
    requests = [
        *pods("hit", [a], 3),
        *pods("named", [b], 2, {"k8s.aliyun.com/eci-imc-id": "imc-missing"}),
        *pods("off", [b], 2, {"k8s.aliyun.com/eci-auto-imc": "false"}),
    ]
    report = report_of([cache("imc-a", a)], requests)
    assert report.create == []


def test_a_partial_hit_weighs_only_the_bytes_it_still_pulls():
    app, sidecar = image("app", layer(1, 100)), image("side", layer(3, 2))
    report = report_of([cache("imc-app", app)], [*pods("web", [app, sidecar], 4)])
    assert report.results[0].outcome == "use" and not report.results[0].perfect
    [best] = report.create
    assert refs(best) == ["app", "side"]
    assert best.pods == 4
    assert best.bytes == 4 * 2 * MB  # 102 MB a pod, 100 MB of it from imc-app


def _coverage(chosen, sets, weights):
    served = set()
    for c in chosen:
        served |= {j for j, s in enumerate(sets) if s <= sets[c]}
    return sum(weights[j] for j in served)


@pytest.mark.parametrize("seed", range(40))
def test_greedy_serves_at_least_1_minus_1_over_e_of_the_best_choice(seed):
    # Brute force over every choice of k candidates on small random instances.
    rng = random.Random(seed)
    pool = [image(f"i{n}", layer(n + 1, rng.randint(1, 50))) for n in range(6)]
    requests = []
    for w in range(rng.randint(3, 8)):
        chosen = rng.sample(pool, rng.randint(1, 3))
        requests += pods(f"w{w}", chosen, rng.randint(1, 6))
    k = rng.randint(1, 3)
    report = report_of([], requests, max_create=k)
    groups = report.groups
    sets, weights = [], []
    for g in groups:
        key = frozenset(i.ref for i in g.images)
        if key in sets:
            weights[sets.index(key)] += g.count * g.missed
        else:
            sets.append(key)
            weights.append(g.count * g.missed)
    best = max(_coverage(choice, sets, weights)
               for choice in itertools.combinations(range(len(sets)), min(k, len(sets))))
    got = sum(r.bytes for r in report.create)
    assert got >= GREEDY_GUARANTEE * best
    assert got <= best
    # What each recommendation says it serves adds up to what the chosen caches serve.
    chosen = [sets.index(frozenset(i.ref for i in r.images)) for r in report.create]
    assert got == _coverage(chosen, sets, weights)


def test_a_candidate_over_twenty_images_is_not_recommended():
    many = [image(f"m{n}", layer(n + 1, 1)) for n in range(21)]
    report = report_of([], [*pods("big", many)])
    assert report.create == []


def test_max_create_bounds_the_list_and_must_be_a_count():
    imgs = [image(f"i{n}", layer(n + 1, n + 1)) for n in range(5)]
    requests = [p for n, img in enumerate(imgs) for p in pods(f"w{n}", [img])]
    assert len(report_of([], requests, max_create=2).create) == 2
    assert report_of([], requests, max_create=0).create == []
    with pytest.raises(fm.FastmatchError, match="integer >= 0"):
        recommend_create([], -1)


# -- delete ---------------------------------------------------------------------


def _deleted(report):
    return {d.id: d.reason for d in report.delete}


def test_a_cache_that_served_no_pod_is_deleted_but_one_being_built_is_kept():
    # (A Failed cache expires a day after its creation: this one is younger.)
    a, b = image("a", layer(1, 10)), image("b", layer(2, 10))
    caches = [cache("imc-used", a), cache("imc-idle", b),
              cache("imc-failed", b, phase="Failed", days_old=0.5),
              cache("imc-building", b, phase="Creating", days_old=0.01)]
    report = report_of(caches, [*pods("web", [a], 2)])
    deleted = _deleted(report)
    assert set(deleted) == {"imc-idle", "imc-failed"}
    assert deleted["imc-idle"] == "served none of the 2 pods"
    assert "Failed" in deleted["imc-failed"]


def test_a_cache_whose_pods_another_serves_at_least_as_well_is_deleted_once():
    # imc-small holds a; imc-big holds a and b, and serves pods needing both.  The pods
    # of imc-small (a only) are as well served by imc-big: imc-small goes, imc-big stays.
    a, b = image("a", layer(1, 10)), image("b", layer(2, 10))
    caches = [cache("imc-small", a, days_old=1), cache("imc-big", a, b, days_old=2)]
    report = report_of(caches, [*pods("one", [a], 3), *pods("two", [a, b], 2)])
    assert {r.cache_id for r in report.results} == {"imc-small", "imc-big"}
    deleted = _deleted(report)
    assert list(deleted) == ["imc-small"]
    assert "served at least as well by imc-big" in deleted["imc-small"]


def test_of_two_identical_caches_one_is_deleted_not_both():
    a = image("a", layer(1, 10))
    caches = [cache("imc-1", a, days_old=1), cache("imc-2", a, days_old=2)]
    report = report_of(caches, [*pods("one", [a], 3)])
    # imc-1 (newer) serves the pods; imc-2 is idle: it goes, and imc-1 then has no twin.
    assert list(_deleted(report)) == ["imc-2"]


def test_a_cache_that_serves_some_pod_better_than_any_other_stays():
    a, b, c = image("a", layer(1, 10)), image("b", layer(2, 10)), image("c", layer(3, 10))
    caches = [cache("imc-ab", a, b), cache("imc-ac", a, c)]
    requests = [*pods("ab", [a, b]), *pods("ac", [a, c])]
    report = report_of(caches, requests)
    assert _deleted(report) == {}


def test_a_named_cache_is_never_deleted_for_a_lookalike():
    a = image("a", layer(1, 10))
    caches = [cache("imc-named", a, days_old=1), cache("imc-other", a, days_old=2)]
    requests = [*pods("n", [a], 2, {"k8s.aliyun.com/eci-imc-id": "imc-named"}),
                *pods("auto", [a], 1)]
    report = report_of(caches, requests)
    assert "imc-named" not in _deleted(report)


def test_recommend_delete_lists_nothing_without_caches():
    assert recommend_delete([], [], T0) == []
