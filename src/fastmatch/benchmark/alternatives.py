"""The alternatives fastmatch is measured against, each written as well as its tool allows.

Four ways to choose a cache for a pod (SPEC §3), for the benchmarks and
``fastmatch bench``:

1. :class:`SetScan`: pure Python, a ``frozenset`` of layer keys per cache,
   every cache looked at for every pod (subset tests run in C).
2. :class:`ReferenceScan`: :class:`fastmatch.reference.ReferenceIndex`, the
   plain, obviously-correct reference.
3. :class:`NumpyCSR`: NumPy over CSR arrays: an inverted index (layer to
   cache rows) whose posting lists are gathered and counted with
   ``np.bincount``, then filtered and ordered vectorized (``np.lexsort``).
4. :class:`RoaringIndex`: pyroaring, a roaring bitmap of caches per layer;
   the caches holding a whole image are the intersection of its layers'
   bitmaps (smallest first), byte coverage from the per-layer bitmaps.

All four return a :class:`Decision` (outcome, cache id, full, covered) and
implement the default, perfect-match, match-count, allow-partial and
named-cache policies, the candidate filter (phase, expiry, storage,
platform) and the order of SPEC §3.6; they do not propose caches to create.
:func:`decision_of` reduces a :class:`~fastmatch.MatchResult` to the same
tuple, so that the benchmarks can check that every alternative decides
exactly as fastmatch does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np

import fastmatch as fm
from fastmatch.model import Image, ImageCache, ImageLike, Phase, distinct_images
from fastmatch.reference import ReferenceIndex
from fastmatch.timeutil import to_micros

__all__ = [
    "ALTERNATIVES",
    "Decision",
    "NumpyCSR",
    "ReferenceScan",
    "RoaringIndex",
    "SetScan",
    "check_same_decisions",
    "decision_of",
    "roaring_available",
]

_NEVER = 1 << 62


class Decision(NamedTuple):
    """What the benchmarks compare: the outcome, the cache, ``full`` and ``covered``."""

    outcome: str
    cache_id: str | None
    full: int
    covered: int


_NONE = Decision("none", None, 0, 0)


def decision_of(result: fm.MatchResult) -> Decision:
    """The comparable part of a fastmatch decision."""
    if result.outcome == "none":
        return _NONE
    return Decision(result.outcome, result.cache_id, result.full, result.covered)


class _Pod:
    """A pod, read once: distinct images, each image's keys, all keys with sizes."""

    __slots__ = ("images", "items", "keysets", "nbytes")

    def __init__(self, images: Iterable[ImageLike]) -> None:
        self.images: tuple[Image, ...] = distinct_images(images)
        sizes = [image.layer_sizes() for image in self.images]
        self.keysets = [frozenset(s) for s in sizes]
        merged: dict[str, int] = {}
        for s in sizes:
            merged.update(s)
        self.items = list(merged.items())
        self.nbytes = sum(merged.values())


class _Caches:
    """What every alternative knows of each cache, as plain values in row order."""

    def __init__(self, caches: Iterable[ImageCache]) -> None:
        self.caches: list[ImageCache] = list(caches)
        self.row: dict[str, int] = {c.id: i for i, c in enumerate(self.caches)}
        if len(self.row) != len(self.caches):
            raise ValueError("cache ids must be distinct")
        self.ids = [c.id for c in self.caches]
        self.ready = [c.phase is Phase.READY for c in self.caches]
        self.created = [to_micros(c.created) for c in self.caches]
        self.expires = [
            _NEVER if (at := c.expires_at) is None else to_micros(at) for c in self.caches
        ]
        self.bytes = [c.bytes for c in self.caches]
        self.size_gib = [c.size_gib for c in self.caches]
        self.arch = [c.arch for c in self.caches]
        self.os = [c.os for c in self.caches]

    def usable(self, r: int, policy: fm.MatchPolicy, now: int) -> bool:
        """SPEC §3.3: Ready, not expired, fits the storage limit, same platform."""
        if not self.ready[r] or self.expires[r] <= now:
            return False
        if policy.storage_gib is not None and self.size_gib[r] > policy.storage_gib:
            return False
        if policy.arch and self.arch[r] and policy.arch != self.arch[r]:
            return False
        return not (policy.os and self.os[r] and policy.os != self.os[r])

    def direct(self, policy: fm.MatchPolicy, pod: _Pod) -> Decision | None:
        """SPEC §3.1-3.2, which need no scan: a named cache, or matching off."""
        if policy.cache_id is not None:
            return self.named(policy, pod)
        return None if policy.auto else _NONE

    def named(self, policy: fm.MatchPolicy, pod: _Pod) -> Decision:
        """SPEC §3.1: the named cache, scored, or a rejection."""
        assert policy.cache_id is not None
        r = self.row.get(policy.cache_id)
        if r is None or not self.ready[r]:
            return Decision("reject", policy.cache_id, 0, 0)
        held = self.caches[r].layer_sizes()
        full = sum(all(k in held for k in keys) for keys in pod.keysets)
        covered = sum(size for key, size in pod.items if key in held)
        return Decision("use", policy.cache_id, full, covered)

    def order_key(self, r: int, full: int, covered: int, pod_bytes: int) -> tuple[Any, ...]:
        """SPEC §3.6 as a key to minimize."""
        return (-full, -covered, abs(self.bytes[r] - pod_bytes), -self.created[r], self.ids[r])


class _Alternative:
    """The shared face: ``match(images, policy, now=)`` and ``match_many``."""

    name = ""

    def __init__(self, caches: Iterable[ImageCache]) -> None:
        """Index ``caches``."""

    def match(
        self, images: Iterable[ImageLike], policy: fm.MatchPolicy | None = None, *, now: datetime
    ) -> Decision:
        """The decision for one pod."""
        raise NotImplementedError

    def match_many(
        self,
        pods: Sequence[Iterable[ImageLike]],
        policies: Sequence[fm.MatchPolicy | None] | None = None,
        *,
        now: datetime,
    ) -> list[Decision]:
        """The decisions for many pods, one after the other."""
        pols: Sequence[fm.MatchPolicy | None] = policies or [None] * len(pods)
        return [self.match(p, pol, now=now) for p, pol in zip(pods, pols, strict=True)]


class SetScan(_Alternative):
    """Pure Python: a ``frozenset`` of layer keys per cache, every cache scanned.

    Subset and membership tests run in C; ``covered`` is only computed for a
    cache that can still win on ``full``.
    """

    name = "python sets"

    def __init__(self, caches: Iterable[ImageCache]) -> None:
        self._c = _Caches(caches)
        self._held = [frozenset(c.layer_sizes()) for c in self._c.caches]
        self._ready_rows = [r for r in range(len(self._held)) if self._c.ready[r]]

    def match(
        self, images: Iterable[ImageLike], policy: fm.MatchPolicy | None = None, *, now: datetime
    ) -> Decision:
        policy = policy or _DEFAULT
        pod = _Pod(images)
        if (direct := self._c.direct(policy, pod)) is not None:
            return direct
        c, held_of, keysets, items = self._c, self._held, pod.keysets, pod.items
        when = to_micros(now)
        bar = policy.min_full(len(pod.images))
        best: tuple[Any, ...] | None = None
        best_row = -1
        best_full = bar
        for r in self._ready_rows:
            held = held_of[r]
            if len(keysets) == 1:
                full = 1 if keysets[0] <= held else 0
            else:
                full = 0
                for keys in keysets:
                    if keys <= held:
                        full += 1
            if full < best_full:
                continue
            if bar == 0 and held.isdisjoint(k for k, _ in items):
                continue
            if not c.usable(r, policy, when):
                continue
            covered = 0
            for key, size in items:
                if key in held:
                    covered += size
            key_r = c.order_key(r, full, covered, pod.nbytes)
            if best is None or key_r < best:
                best, best_row, best_full = key_r, r, full
        if best is None:
            return _NONE
        return Decision("use", c.ids[best_row], -best[0], -best[1])


class ReferenceScan(_Alternative):
    """The plain reference (:mod:`fastmatch.reference`): every cache, every layer, in Python."""

    name = "reference"

    def __init__(self, caches: Iterable[ImageCache]) -> None:
        self._index = ReferenceIndex(caches)

    def match(
        self, images: Iterable[ImageLike], policy: fm.MatchPolicy | None = None, *, now: datetime
    ) -> Decision:
        return decision_of(self._index.match(images, policy, now=now))


class NumpyCSR(_Alternative):
    """NumPy: an inverted index as CSR arrays, posting lists gathered and counted.

    The caches holding a whole image are those that appear in the posting
    lists of all its layers (``np.bincount`` of the concatenated postings
    equals the layer count); ``covered`` is a weighted ``np.bincount`` of the
    postings of all the pod's layers; the candidate filter and the order are
    vectorized over the caches that hold some image.
    """

    name = "numpy csr"

    def __init__(self, caches: Iterable[ImageCache]) -> None:
        self._c = c = _Caches(caches)
        ids: dict[str, int] = {}
        rows: list[int] = []
        lids: list[int] = []
        for r, cache in enumerate(c.caches):
            for key in cache.layer_sizes():
                lids.append(ids.setdefault(key, len(ids)))
                rows.append(r)
        self._ids = ids
        pair_layer = np.asarray(lids, dtype=np.int64)
        pair_row = np.asarray(rows, dtype=np.int32)
        order = np.argsort(pair_layer, kind="stable")
        self._post = pair_row[order]
        self._off = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_layer, minlength=len(ids)), out=self._off[1:])
        n = len(c.caches)
        self._n = n
        self._ready = np.asarray(c.ready, dtype=bool)
        self._expires = np.asarray(c.expires, dtype=np.int64)
        self._created = np.asarray(c.created, dtype=np.int64)
        self._bytes = np.asarray(c.bytes, dtype=np.int64)
        self._size_gib = np.asarray(c.size_gib, dtype=np.int64)
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(np.asarray(c.ids, dtype=object), kind="stable")] = np.arange(n)
        self._id_rank = rank
        self._plain = all(a is None for a in c.arch) and all(o is None for o in c.os)

    def _postings(self, lids: list[int]) -> np.ndarray:
        off = self._off
        if len(lids) == 1:
            return self._post[off[lids[0]] : off[lids[0] + 1]]
        return np.concatenate([self._post[off[i] : off[i + 1]] for i in lids])

    def _holders(self, keys: frozenset[str]) -> np.ndarray:
        """Rows of the caches holding every key (an image fully)."""
        lids = []
        for key in keys:
            lid = self._ids.get(key)
            if lid is None:
                return np.empty(0, dtype=np.int32)
            lids.append(lid)
        post = self._postings(lids)
        if len(lids) == 1:
            return post
        return np.flatnonzero(np.bincount(post) == len(lids))

    def match(
        self, images: Iterable[ImageLike], policy: fm.MatchPolicy | None = None, *, now: datetime
    ) -> Decision:
        policy = policy or _DEFAULT
        pod = _Pod(images)
        if (direct := self._c.direct(policy, pod)) is not None:
            return direct
        bar = policy.min_full(len(pod.images))
        known = [(self._ids[k], s) for k, s in pod.items if k in self._ids]
        if not known:
            return _NONE
        held = [self._holders(keys) for keys in pod.keysets]
        if bar == 0:
            cand = np.unique(self._postings([lid for lid, _ in known]))
        elif len(held) == 1:
            cand = held[0]
        else:
            cand = np.unique(np.concatenate(held))
        if cand.size == 0:
            return _NONE
        cand = cand[self._ready[cand] & (self._expires[cand] > to_micros(now))]
        if policy.storage_gib is not None:
            cand = cand[self._size_gib[cand] <= policy.storage_gib]
        if not self._plain and (policy.arch or policy.os):
            c = self._c
            keep = [c.usable(int(r), policy, to_micros(now)) for r in cand]
            cand = cand[np.asarray(keep, dtype=bool)]
        if cand.size == 0:
            return _NONE
        if len(held) == 1:
            full = np.isin(cand, held[0]).astype(np.int64) if bar == 0 else np.ones(cand.size)
        else:
            full = sum((np.isin(cand, h).astype(np.int64) for h in held), np.zeros(cand.size))
        ok = full >= bar
        cand, full = cand[ok], full[ok]
        if cand.size == 0:
            return _NONE
        lids = [lid for lid, _ in known]
        weights = np.repeat(
            np.asarray([s for _, s in known], dtype=np.float64),
            self._off[np.asarray(lids) + 1] - self._off[np.asarray(lids)],
        )
        # Byte sums stay below 2**53, so float64 weights add up exactly.
        covered = np.bincount(self._postings(lids), weights=weights, minlength=self._n)[cand]
        covered = covered.astype(np.int64)
        distance = np.abs(self._bytes[cand] - pod.nbytes)
        i = np.lexsort((self._id_rank[cand], -self._created[cand], distance, -covered, -full))[0]
        return Decision("use", self._c.ids[int(cand[i])], int(full[i]), int(covered[i]))


def roaring_available() -> bool:
    """Whether pyroaring is installed (it is an optional dependency)."""
    try:
        import pyroaring  # noqa: F401
    except ImportError:
        return False
    return True


class RoaringIndex(_Alternative):
    """pyroaring: a roaring bitmap of cache rows per layer (an inverted index).

    The caches that hold an image fully are the intersection of its layers'
    bitmaps, smallest first, stopping as soon as it is empty; the candidates
    are filtered against a bitmap of Ready caches; ``covered`` is summed from
    the per-layer bitmaps intersected with the candidates, and only for the
    candidates that tie on the best ``full``.
    """

    name = "pyroaring"

    def __init__(self, caches: Iterable[ImageCache]) -> None:
        from pyroaring import BitMap

        self._BitMap = BitMap
        self._c = c = _Caches(caches)
        rows: dict[str, list[int]] = {}
        for r, cache in enumerate(c.caches):
            for key in cache.layer_sizes():
                rows.setdefault(key, []).append(r)
        self._bm: dict[str, Any] = {key: BitMap(v) for key, v in rows.items()}
        for bm in self._bm.values():
            bm.run_optimize()
        self._ready = BitMap(r for r in range(len(c.caches)) if c.ready[r])

    def _holders(self, keys: frozenset[str]) -> Any:
        try:
            bms = sorted((self._bm[k] for k in keys), key=len)
        except KeyError:
            return self._BitMap()
        out = bms[0] & self._ready
        for bm in bms[1:]:
            if not out:
                break
            out &= bm
        return out

    def match(
        self, images: Iterable[ImageLike], policy: fm.MatchPolicy | None = None, *, now: datetime
    ) -> Decision:
        policy = policy or _DEFAULT
        pod = _Pod(images)
        c = self._c
        if (direct := c.direct(policy, pod)) is not None:
            return direct
        when = to_micros(now)
        bar = policy.min_full(len(pod.images))
        held = [self._holders(keys) for keys in pod.keysets]
        if bar == 0:
            bms = [self._bm[k] for k, _ in pod.items if k in self._bm]
            pool = self._BitMap.union(*bms) & self._ready if bms else self._BitMap()
        elif bar == len(held):
            pool = self._BitMap.intersection(*held) if len(held) > 1 else held[0]
        else:
            pool = self._BitMap.union(*held) if len(held) > 1 else held[0]
        # full per candidate, then only the best full survive.
        best_full = -1
        top: list[int] = []
        for r in pool:
            if not c.usable(r, policy, when):
                continue
            full = sum(r in h for h in held) if len(held) > 1 else int(r in held[0])
            if full < bar:
                continue
            if full > best_full:
                best_full, top = full, [r]
            elif full == best_full:
                top.append(r)
        if not top:
            return _NONE
        if len(top) == 1:
            r = top[0]
            covered = sum(s for k, s in pod.items if k in self._bm and r in self._bm[k])
            return Decision("use", c.ids[r], best_full, covered)
        tops = self._BitMap(top)
        cov = dict.fromkeys(top, 0)
        for key, size in pod.items:
            bm = self._bm.get(key)
            if bm is not None and size:
                for r in bm & tops:
                    cov[r] += size
        r = min(top, key=lambda r: c.order_key(r, best_full, cov[r], pod.nbytes))
        return Decision("use", c.ids[r], best_full, cov[r])


_DEFAULT = fm.MatchPolicy()


def check_same_decisions(
    alternative: _Alternative,
    index: fm.CacheIndex,
    pods: Sequence[Sequence[ImageLike]],
    policies: Sequence[fm.MatchPolicy | None] | None,
    now: datetime,
) -> None:
    """Raise ``AssertionError`` naming the first pod on which ``alternative`` decides otherwise."""
    pols: Sequence[fm.MatchPolicy | None] = policies if policies is not None else [None] * len(pods)
    for i, (pod, policy) in enumerate(zip(pods, pols, strict=True)):
        want = decision_of(index.match(pod, policy, now=now))
        got = alternative.match(pod, policy, now=now)
        if got != want:
            raise AssertionError(
                f"{alternative.name} decides {got} for pod {i} ({list(pod)!r}, {policy}); "
                f"fastmatch decides {want}"
            )


ALTERNATIVES: dict[str, type[_Alternative]] = {
    "sets": SetScan,
    "reference": ReferenceScan,
    "numpy": NumpyCSR,
    "roaring": RoaringIndex,
}
