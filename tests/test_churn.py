"""The index under churn: upserts, removes, phase changes and expiry, against the reference.

A Hypothesis state machine (as pyroaring's test_state_machine does with a
``set``) applies random operations to a ``CacheIndex`` and to the reference,
and checks after every step that both decide alike and hold the same caches.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import fastmatch as fm
from fastmatch.reference import ReferenceIndex

from strategies import PHASES, T0, caches, pods, policies

IDS = [f"imc-{i:02d}" for i in range(12)]


class ChurnMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.index = fm.CacheIndex()
        self.reference = ReferenceIndex()
        self.now = T0

    @rule(data=st.data(), ident=st.sampled_from(IDS))
    def upsert(self, data, ident):
        cache = data.draw(caches(ident))
        self.index.upsert(cache)
        self.reference.upsert(cache)

    @rule(ident=st.sampled_from(IDS))
    def remove(self, ident):
        assert self.index.discard(ident) == (ident in self.reference)
        self.reference.remove(ident)

    @rule(data=st.data(), ids=st.lists(st.sampled_from(IDS), unique=True, max_size=6))
    def apply_batch(self, data, ids):
        # One batched write, as the cluster sync makes them: some ids upserted,
        # some present ones removed, in one call.
        upserts, removes = [], []
        for ident in ids:
            if ident in self.reference and data.draw(st.booleans()):
                removes.append(ident)
            else:
                upserts.append(data.draw(caches(ident)))
        gone = self.index.apply(upserts, removes)
        assert [c.id for c in gone] == removes
        for cache in upserts:
            self.reference.upsert(cache)
        for ident in removes:
            self.reference.remove(ident)

    @rule(ident=st.sampled_from(IDS), phase=st.sampled_from(PHASES))
    def change_phase(self, ident, phase):
        cache = self.index.get(ident)
        if cache is not None:
            changed = cache.replace(phase=fm.Phase.parse(phase))
            self.index.upsert(changed)
            self.reference.upsert(changed)

    @rule(days=st.integers(0, 10))
    def time_passes(self, days):
        self.now += timedelta(days=days)

    @rule(ident=st.sampled_from(IDS))
    def record_match(self, ident):
        if ident in self.index:
            updated = self.index.record_match(ident, self.now)
            self.reference.upsert(updated)

    @rule(pod=pods, policy=policies())
    def match(self, pod, policy):
        got = self.index.match(pod, policy, pod_name="p", now=self.now)
        assert got == self.reference.match(pod, policy, pod_name="p", now=self.now)

    @rule(data=st.data(), extra=pods)
    def match_cached_images(self, data, extra):
        # Pods that run the images caches list: the core answers these from
        # its held images, whose holder lists every write must keep exact.
        held = [image for cache in self.reference.caches().values() for image in cache.images]
        if held:
            pod = data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=3))
            pod += extra[: data.draw(st.integers(0, 1))]
            policy = data.draw(policies())
            got = self.index.match(pod, policy, pod_name="p", now=self.now)
            assert got == self.reference.match(pod, policy, pod_name="p", now=self.now)

    @invariant()
    def held_images_are_exact(self):
        self.index.verify()

    @invariant()
    def same_caches(self):
        assert len(self.index) == len(self.reference)
        assert {c.id: c for c in self.index} == dict(self.reference.caches())
        assert self.index.ready == sum(c.ready for c in self.index)


TestChurn = ChurnMachine.TestCase


class Churn:
    """An index of 20 caches over 30 images that another thread keeps rewriting.

    ``held`` keeps every version of every cache the index ever held, so a
    result can be checked against the version it names: it must be one of
    them, and its scores must be that version's.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        layers = [fm.Layer(f"sha256:{i:064x}", 1000 + i) for i in range(40)]
        self.images = [fm.Image(f"app/svc{i}:1", self.rng.sample(layers, 4)) for i in range(30)]
        initial = [self.cache(i) for i in range(20)]
        self.index = fm.CacheIndex(initial)
        self.held = {id(c): c for c in initial}
        self.now = T0 + timedelta(days=1)
        self.checked = 0
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._churn)

    def cache(self, i: int) -> fm.ImageCache:
        return fm.ImageCache(f"imc-{i:02d}", self.rng.sample(self.images, self.rng.randint(1, 4)),
                             created=T0 + timedelta(seconds=self.rng.randrange(100)))

    def _churn(self) -> None:
        while not self._stop.is_set():
            i = self.rng.randrange(20)
            if self.rng.random() < 0.2:
                self.index.discard(f"imc-{i:02d}")
            else:
                new = self.cache(i)
                self.held[id(new)] = new
                self.index.upsert(new)

    def __enter__(self) -> Churn:
        self._writer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._writer.join()

    def check(self, pod: list[fm.Image], result: fm.MatchResult) -> None:
        if result.outcome != "use":
            return
        seen = result.cache
        assert seen is not None and self.held.get(id(seen)) is seen
        want = ReferenceIndex([seen]).match(pod, now=self.now)
        assert (want.full, want.covered, want.distance) == (
            result.full, result.covered, result.distance)
        self.checked += 1


def test_single_matches_while_another_thread_upserts_and_removes():
    """One-pod matches (the webhook's path) against a churning index are never torn."""
    with Churn(seed=11) as churn:
        for n in range(3000):
            pod = [churn.images[n % len(churn.images)]]
            churn.check(pod, churn.index.match(pod, now=churn.now))
    assert churn.checked > 100


def test_match_many_while_another_thread_upserts_and_removes():
    """Every result agrees with some state the index passed through, never a torn one."""
    with Churn(seed=7) as churn:
        pods_ = [[image] for image in churn.images]
        for _ in range(40):
            results = churn.index.match_many(pods_, now=churn.now, threads=2)
            for pod, result in zip(pods_, results):
                churn.check(pod, result)
    assert churn.checked > 100


def _image(i: int) -> fm.Image:
    return fm.Image(f"app/svc{i}:1", [fm.Layer(f"sha256:{i:064x}", 1000 + i)])


def test_apply_is_all_or_nothing():
    """A batch with one bad part changes nothing: no cache added, replaced or removed."""
    a, b = fm.ImageCache("imc-a", [_image(1)]), fm.ImageCache("imc-b", [_image(2)])
    index = fm.CacheIndex([a, b])
    new = fm.ImageCache("imc-c", [_image(3)])
    bad_batches = [  # (upserts, removes, what the error names)
        ([new, "imc-x"], (), "got str"),
        ([new], ["imc-a", "imc-zz"], "'imc-zz'"),
        ([new, new], (), "'imc-c' appears twice"),
        ([new], ["imc-c"], "'imc-c' appears twice"),
        ([new], [7], "got int"),
    ]
    for upserts, removes, named in bad_batches:
        with pytest.raises(fm.FastmatchError, match=named):
            index.apply(upserts, removes)
        assert sorted(c.id for c in index) == ["imc-a", "imc-b"]
        assert index.match([_image(3)]).outcome == "none"
        assert index.match([_image(1)]).cache_id == "imc-a"
        index.verify()


def test_apply_replaces_removes_and_takes_phase_changes():
    a, b = fm.ImageCache("imc-a", [_image(1)]), fm.ImageCache("imc-b", [_image(2)])
    index = fm.CacheIndex([a, b])
    building = a.replace(phase=fm.Phase.CREATING)
    gone = index.apply([building, fm.ImageCache("imc-c", [_image(1)])], ["imc-b"])
    assert [c.id for c in gone] == ["imc-b"]
    assert sorted(c.id for c in index) == ["imc-a", "imc-c"]
    assert index.ready == 1
    assert index.match([_image(1)]).cache_id == "imc-c"  # imc-a is being built: not a candidate
    assert index.match([_image(2)]).outcome == "none"
    index.apply([building.replace(phase=fm.Phase.READY)])
    assert index.ready == 2
    index.verify()


def test_a_batch_is_seen_whole_by_matches_beside_it():
    """A batch that moves an image from one cache to another is seen before or after, never between.

    Each batch removes the cache that holds the pod's image and adds another
    that holds it: a match beside it finds exactly one of them every time,
    never neither (half-applied) and never an id the batch removed.
    """
    image = _image(1)
    index = fm.CacheIndex([fm.ImageCache("imc-0", [image])])
    stop = threading.Event()
    flips = [0]

    def writer() -> None:
        i = 0
        while not stop.is_set():
            filler = [fm.ImageCache(f"fill-{i}-{k}", [_image(100 + k)]) for k in range(20)]
            old_fill = [f"fill-{i - 1}-{k}" for k in range(20)] if i else []
            index.apply([fm.ImageCache(f"imc-{i + 1}", [image]), *filler], [f"imc-{i}", *old_fill])
            i += 1
            flips[0] = i

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = set()
        matches = 0
        # At least 5,000 matches, and on until the writer has had its turns (a busy
        # machine may not give its thread the GIL for a while).
        deadline = time.monotonic() + 60
        while (matches < 5000 or len(seen) < 3) and time.monotonic() < deadline:
            result = index.match([image])
            assert result.outcome == "use", result.reason
            seen.add(result.cache_id)
            matches += 1
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert len(seen) > 1 and flips[0] > 1  # the batches did run beside the matches
    index.verify()
