"""The index under churn: upserts, removes, phase changes and expiry, against the reference.

A Hypothesis state machine (as pyroaring's test_state_machine does with a
``set``) applies random operations to a ``CacheIndex`` and to the reference,
and checks after every step that both decide alike and hold the same caches.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import fastmatch as fm
from fastmatch._reference import ReferenceIndex

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

    @invariant()
    def same_caches(self):
        assert len(self.index) == len(self.reference)
        assert {c.id: c for c in self.index} == dict(self.reference.caches())
        assert self.index.ready == sum(c.ready for c in self.index)


TestChurn = ChurnMachine.TestCase


def test_match_many_while_another_thread_upserts_and_removes():
    """Every result agrees with some state the index passed through, never a torn one."""
    rng = random.Random(7)
    layers = [fm.Layer(f"sha256:{i:064x}", 1000 + i) for i in range(40)]
    images = [fm.Image(f"app/svc{i}:1", rng.sample(layers, 4)) for i in range(30)]
    now = T0 + timedelta(days=1)

    def cache(i: int) -> fm.ImageCache:
        return fm.ImageCache(f"imc-{i:02d}", rng.sample(images, rng.randint(1, 4)),
                             created=T0 + timedelta(seconds=rng.randrange(100)))

    initial = [cache(i) for i in range(20)]
    index = fm.CacheIndex(initial)
    upserted = {id(c): c for c in initial}  # every version the index ever held
    pods_ = [[img] for img in images]
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            i = rng.randrange(20)
            if rng.random() < 0.2:
                index.discard(f"imc-{i:02d}")
            else:
                new = cache(i)
                upserted[id(new)] = new
                index.upsert(new)

    writer = threading.Thread(target=churn)
    writer.start()
    checked = 0
    try:
        for _ in range(40):
            results = index.match_many(pods_, now=now, threads=2)
            for pod, result in zip(pods_, results):
                if result.outcome != "use":
                    continue
                seen = result.cache
                assert seen is not None and upserted.get(id(seen)) is seen
                want = ReferenceIndex([seen]).match(pod, now=now)
                assert (want.full, want.covered, want.distance) == (
                    result.full, result.covered, result.distance)
                checked += 1
    finally:
        stop.set()
        writer.join()
    assert checked > 100
