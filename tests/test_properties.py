"""The compiled index agrees with the plain-Python reference on every field."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.reference import ReferenceIndex

from strategies import cache_sets, pods, policies, times


@given(cache_sets(), pods, policies(), times, st.sampled_from(["", "web-0"]),
       st.sampled_from(["auto", "probe", "count"]))
def test_match_agrees_with_reference(caches, pod, policy, now, name, strategy):
    index = fm.CacheIndex(caches)
    # Both ways of finding candidates (probing the rarest layer's slots, and
    # counting over every posting list) must give the same decision.
    index.candidate_strategy = strategy
    want = ReferenceIndex(caches).match(pod, policy, pod_name=name, now=now)
    got = index.match(pod, policy, pod_name=name, now=now)
    assert got == want
    assert (got.cache is None) == (want.cache is None)
    if got.cache is not None:
        assert got.cache is index.get(got.cache_id)


@given(cache_sets(), st.data(), policies(), times)
def test_pods_of_cached_images_agree_with_reference(caches, data, policy, now):
    # Pods running images that caches list, as most pods do: the core finds
    # their holders ready (and intersects them when a pod has several).
    listed = [image for cache in caches for image in cache.images]
    if not listed:
        return
    pod = data.draw(st.lists(st.sampled_from(listed), min_size=1, max_size=4))
    pod += data.draw(st.lists(pods, max_size=1).map(lambda p: p[0][:1] if p else []))
    index = fm.CacheIndex(caches)
    index.verify()
    want = ReferenceIndex(caches).match(pod, policy, pod_name="web-0", now=now)
    assert index.match(pod, policy, pod_name="web-0", now=now) == want
    assert index.match_many([pod], policy, now=now, pod_names=["web-0"]) == [want]


@given(cache_sets(), st.lists(st.tuples(pods, policies()), min_size=1, max_size=12), times,
       st.integers(1, 3))
def test_match_many_agrees_with_reference(caches, batch, now, threads):
    pod_list = [p for p, _ in batch]
    policy_list = [pol for _, pol in batch]
    names = [f"pod-{i}" for i in range(len(batch))]
    want = ReferenceIndex(caches).match_many(pod_list, policy_list, now=now, pod_names=names)
    got = fm.CacheIndex(caches).match_many(pod_list, policy_list, now=now, threads=threads,
                                           pod_names=names)
    assert got == want


@given(cache_sets(), pods, times)
def test_allow_partial_never_loses_a_full_match(caches, pod, now):
    index = fm.CacheIndex(caches)
    strict = index.match(pod, fm.MatchPolicy(), now=now)
    loose = index.match(pod, fm.MatchPolicy(allow_partial=True), now=now)
    if strict.outcome == "use":
        # The order puts full matches first, so lowering the bar keeps the same choice.
        assert loose.cache_id == strict.cache_id
    assert loose.full >= strict.full


@given(cache_sets(), st.lists(st.tuples(pods, policies(), st.integers(1, 4)), min_size=1,
                              max_size=8), times, st.integers(1, 2))
def test_match_many_of_workloads_equals_listing_every_replica(caches, batch, now, threads):
    # replicas=: one entry per workload decides as its replicas listed one by one would
    # (the first pod of an image set proposes, the others say so), in the same order.
    index = fm.CacheIndex(caches)
    pod_list = [p for p, _, _ in batch]
    policy_list = [pol for _, pol, _ in batch]
    counts = [n for _, _, n in batch]
    names = [f"w{i}-0" for i in range(len(batch))]
    got = index.match_many(pod_list, policy_list, now=now, threads=threads, pod_names=names,
                           replicas=counts)
    every = [(p, pol, f"w{i}-{k}") for i, (p, pol, n) in enumerate(batch) for k in range(n)]
    want = index.match_many([p for p, _, _ in every], [pol for _, pol, _ in every], now=now,
                            threads=threads, pod_names=[name for _, _, name in every])
    assert got == want
    assert len(got) == sum(counts)
