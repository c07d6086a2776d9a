"""The cache index: :class:`CacheIndex`, the thin Python face over the compiled core.

Model objects come in; :mod:`fastmatch.encoding` turns them into the plain keys
and numbers ``fastmatch._core`` scores; the best candidates the core finds go
to :mod:`fastmatch.decision`, which words the result.  ``match_many``'s
pipeline is :mod:`fastmatch.batch`; snapshots are :mod:`fastmatch.snapshot`.

One thing the core does not do: hold a pod image whose layers are known
whole when a cache lists that image by reference only (SPEC §1).  The index
keeps, for each reference and digest that some ``Ready`` cache lists without
layers, the ids of those caches; a pod with such an image has those caches
scored by :func:`fastmatch.decision.score` and compared with the core's best.
Every other cache scores the same either way, so the merged choice is exact.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, Protocol

import fastmatch._core as _core
from fastmatch import batch, decision, lifecycle
from fastmatch.decision import DEFAULT_CREATION_TIMEOUT, Best, ImageSets
from fastmatch.encoding import NEVER, cache_columns, cache_row, pod_images, pod_keys
from fastmatch.errors import FastmatchError, InputFileError, ValidationError
from fastmatch.explain import reason_used
from fastmatch.model import Image, ImageCache, ImageLike, Phase
from fastmatch.policy import MatchPolicy
from fastmatch.result import MatchResult
from fastmatch.snapshot import CacheTable, Snapshot
from fastmatch.timeutil import TimeLike, micros_at, to_micros, utcnow

__all__ = ["CacheIndex", "UnknownCacheError"]

_DEFAULT_POLICY = MatchPolicy()  # immutable, so one serves every call
_use = MatchResult.use
_STRATEGIES = ("auto", "probe", "count")

if NEVER != _core.NEVER:  # pragma: no cover - the two are written in two languages
    raise ImportError("fastmatch.encoding.NEVER disagrees with the core's")


class UnknownCacheError(FastmatchError, KeyError):
    """No cache with that id is in the index."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown image cache"


def _policy(policy: object) -> MatchPolicy:
    if policy is None:
        return _DEFAULT_POLICY
    if type(policy) is not MatchPolicy and not isinstance(policy, MatchPolicy):
        hint = (
            " (MatchPolicy.from_annotations reads annotations)" if isinstance(policy, dict) else ""
        )
        raise ValidationError(f"policy must be a MatchPolicy, got {type(policy).__name__}{hint}")
    return policy


def _timeout(value: object) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValidationError(f"creation_timeout must be a positive timedelta, got {value!r}")
    return value


class PodLike(Protocol):
    """What :meth:`CacheIndex.match_pod` reads of a request (a
    :class:`fastmatch.PodRequest` is one)."""

    @property
    def images(self) -> tuple[Image, ...]:
        """The pod's distinct images."""
    @property
    def policy(self) -> MatchPolicy:
        """What the pod asks of its cache."""
    @property
    def name(self) -> str:
        """The pod's name (for proposals)."""


class CacheIndex:
    """Image caches, indexed for matching pods against them (SPEC §3, §7).

    >>> import fastmatch as fm
    >>> idx = fm.CacheIndex()
    >>> idx.upsert(fm.ImageCache("imc-1", ["nginx:1.25"]))
    >>> idx.match(["nginx:1.25"]).cache_id
    'imc-1'

    ``creation_timeout``: a cache still ``Preparing``/``Creating`` after this
    long no longer stops proposals for its images (SPEC §3.7).

    Thread-safe: any number of threads may match while others upsert and
    remove; a match sees each cache as it was before or after an upsert.
    """

    def __init__(
        self,
        caches: Iterable[ImageCache] = (),
        *,
        creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    ) -> None:
        self._core = _core.Core()
        self._caches = CacheTable()
        self._slots: dict[str, int] = {}  # Ready caches' core slots
        self._building: ImageSets[int] = ImageSets()  # caches being built: created (µs)
        # Identity -> ids of Ready caches listing that image by reference only.
        self._by_reference: dict[str, set[str]] = {}
        self._timeout = _timeout(creation_timeout)
        self._write = threading.RLock()  # writers take turns (record_match upserts inside)
        if isinstance(caches, (str, bytes, ImageCache)) or not isinstance(caches, Iterable):
            raise ValidationError(
                f"CacheIndex takes a list of ImageCache objects, got {type(caches).__name__}"
            )
        self._build(caches)

    @property
    def creation_timeout(self) -> timedelta:
        """How long a cache may stay ``Preparing``/``Creating`` and still stop proposals."""
        return self._timeout

    def _build(self, caches: Iterable[ImageCache]) -> None:
        """Load ``caches`` into this new, empty index in one pass of the core.

        The same index as upserting them in order (a later cache replaces an
        earlier one with its id), built in bulk; nothing is kept if one is bad.
        """
        latest: dict[str, ImageCache] = {}
        for cache in caches:
            if type(cache) is not ImageCache and not isinstance(cache, ImageCache):
                raise ValidationError(f"upsert takes an ImageCache, got {type(cache).__name__}")
            latest[cache.id] = cache  # a later one replaces it in its place, as upsert does
        if not latest:
            return
        ready_phase = Phase.READY
        ready = [c for c in latest.values() if c.phase is ready_phase]
        if ready:
            self._core.build(ready, *cache_columns(ready))
            self._core.compact()
        self._slots = {c.id: slot for slot, c in enumerate(ready)}
        self._caches.put_all(latest)
        being_created = decision.BEING_CREATED
        # Most caches are Ready and list no image by reference: nothing to track.  (Ready
        # is asked first: ``in`` compares a phase with each by its str value.)
        for cache in [c for c in latest.values()
                      if (c.by_reference if c.phase is ready_phase else c.phase in being_created)]:
            self._track(cache)

    def _track(self, cache: ImageCache) -> None:
        """Note what the index keeps about a cache besides the core: being built, by reference."""
        if cache.phase in decision.BEING_CREATED:
            self._building.add(cache.id, cache.images, to_micros(cache.created))
        elif cache.phase is Phase.READY:
            for key in cache.by_reference:
                self._by_reference.setdefault(key, set()).add(cache.id)

    def _untrack(self, cache: ImageCache) -> None:
        self._building.discard(cache.id)
        for key in cache.by_reference:
            ids = self._by_reference.get(key)
            if ids is not None:
                ids.discard(cache.id)
                if not ids:
                    del self._by_reference[key]

    def compact(self) -> None:
        """Give back the spare capacity of the index's arrays.

        Growing arrays keep room to grow; after a bulk load or many removes,
        this brings memory down to what the caches need.  Matches may run
        meanwhile.
        """
        self._core.compact()

    def nbytes(self) -> int:
        """Bytes of the index's arrays (layers, postings, held images, per-cache fields)."""
        return int(self._core.nbytes())

    @property
    def pairs(self) -> int:
        """How many (cache, layer) pairs the index holds: what its memory grows with."""
        return int(self._core.pairs)

    def verify(self) -> None:
        """Check the index's internal lists against a recount; raise ``AssertionError`` if off.

        Slow (it recounts by brute force): for tests and for debugging.
        """
        self._core.check()
        live = {self._caches.resolve(obj).id for obj in self._core.to_arrays()[3]}
        assert live == set(self._slots), "core slots disagree with the Ready caches"
        for cache_id in self._slots:
            assert self._caches.phase(cache_id) is Phase.READY, f"{cache_id} is not Ready"

    @property
    def candidate_strategy(self) -> str:
        """How the core finds candidates: ``"auto"`` (by cost), ``"probe"`` or ``"count"``.

        Every strategy gives the same results; the choice is for tests and benchmarks.
        """
        return str(self._core.strategy)

    @candidate_strategy.setter
    def candidate_strategy(self, value: str) -> None:
        if value not in _STRATEGIES:
            raise ValidationError(f"candidate_strategy must be one of {_STRATEGIES}, got {value!r}")
        self._core.strategy = value

    # -- persistence ----------------------------------------------------------

    def save(self, path: str | os.PathLike[str] | io.BytesIO) -> None:
        """Write the index to ``path`` (or into a binary buffer) as a snapshot (NumPy
        ``.npz``), atomically.

        :meth:`load` reads it back in milliseconds, building cache objects
        only when they are asked for.  A path that cannot be written raises
        :class:`~fastmatch.InputFileError` naming it, and leaves nothing behind.
        """
        Snapshot.write(path, self._arrays())

    def _arrays(self) -> dict[str, Any]:
        with self._write:
            caches = self._caches.caches()
            arrays, keys, platforms, objs = self._core.to_arrays()
            ids = [self._caches.resolve(o).id for o in objs]
        return Snapshot.arrays(caches, (arrays, keys, platforms, ids))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | io.BytesIO,
        *,
        creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    ) -> CacheIndex:
        """Read an index written by :meth:`save`.

        A file that is not a snapshot raises :class:`~fastmatch.InputFileError`
        naming it; nothing is half-loaded.
        """
        return cls._from_snapshot(Snapshot.read(path), creation_timeout)

    @classmethod
    def _from_snapshot(cls, snap: Snapshot, creation_timeout: timedelta) -> CacheIndex:
        index = cls(creation_timeout=creation_timeout)
        rows = snap.core_row.tolist()
        try:
            index._core = _core.Core.from_arrays(snap.core, snap.keys, snap.platforms, rows)
        except ValueError as exc:
            raise InputFileError(f"{snap.where}: inconsistent snapshot ({exc})") from None
        index._caches = CacheTable(snap)
        for cache in index._caches.loaded(decision.BEING_CREATED):
            index._track(cache)
        index._slots = {snap.ids[row]: slot for slot, row in enumerate(rows)}
        return index

    def __reduce__(self) -> tuple[Any, ...]:
        buffer = io.BytesIO()
        Snapshot.write(buffer, self._arrays())
        return (_unpickle, (buffer.getvalue(), self._timeout))

    # -- the set of caches ----------------------------------------------------

    def __len__(self) -> int:
        return len(self._caches)

    def __contains__(self, cache_id: object) -> bool:
        return cache_id in self._caches

    def __iter__(self) -> Iterator[ImageCache]:
        return iter(self._caches.caches())

    def get(self, cache_id: str) -> ImageCache | None:
        """The cache with this id, or ``None``."""
        return self._caches.get(cache_id)

    def __getitem__(self, cache_id: str) -> ImageCache:
        cache = self.get(cache_id)
        if cache is None:
            raise UnknownCacheError(f"no image cache {cache_id!r} in the index")
        return cache

    @property
    def ready(self) -> int:
        """How many caches are ``Ready`` (the ones matching can use)."""
        return len(self._core)

    def upsert(self, cache: ImageCache) -> None:
        """Add ``cache``, or replace the cache with the same id.

        Costs O(layers of the cache).  A cache that is not ``Ready`` is kept
        (a pod may name it, and it suppresses duplicate auto-create
        proposals) but matching never uses it.
        """
        if not isinstance(cache, ImageCache):
            raise ValidationError(f"upsert takes an ImageCache, got {type(cache).__name__}")
        row = cache_row(cache) if cache.phase is Phase.READY else None
        with self._write:
            old = self._caches.get(cache.id)
            slot = self._slots.get(cache.id, -1)
            if row is not None:
                self._slots[cache.id] = self._core.replace(slot, cache, *row)
            elif slot >= 0:
                self._core.remove(slot)
                del self._slots[cache.id]
            if old is not None:
                self._untrack(old)
            self._caches.put(cache)
            self._track(cache)

    def remove(self, cache_id: str) -> ImageCache:
        """Remove the cache with this id and return it; raise if there is none."""
        with self._write:
            cache = self._caches.pop(cache_id)
            if cache is None:
                raise UnknownCacheError(f"no image cache {cache_id!r} in the index")
            slot = self._slots.pop(cache_id, -1)
            if slot >= 0:
                self._core.remove(slot)
            self._untrack(cache)
            return cache

    def apply(
        self, upserts: Iterable[ImageCache] = (), removes: Iterable[str] = ()
    ) -> list[ImageCache]:
        """Add or replace the ``upserts`` and remove the ``removes``, all at once.

        One write for the whole batch, as a watch delivers it: the caches are
        prepared first, then the core takes its write lock once, so a match
        running beside it sees every cache either before the batch or after
        it, and a writer beside flat-out matching is not slowed to one write
        per hand-off of the GIL.  All or nothing: an argument that is not an
        ``ImageCache``, an id that appears twice (in either list) or a
        remove of an id not in the index raises before anything changes.
        Returns the removed caches, in the order of ``removes``.
        """
        ups = list(upserts) if not isinstance(upserts, ImageCache) else [upserts]
        ids = [removes] if isinstance(removes, str) else list(removes)
        seen: set[str] = set()
        for cache in ups:
            if not isinstance(cache, ImageCache):
                raise ValidationError(f"apply upserts ImageCaches, got {type(cache).__name__}")
            if cache.id in seen:
                raise ValidationError(f"cache {cache.id!r} appears twice in one apply")
            seen.add(cache.id)
        for cache_id in ids:
            if not isinstance(cache_id, str):
                raise ValidationError(f"apply removes cache ids, got {type(cache_id).__name__}")
            if cache_id in seen:
                raise ValidationError(f"cache {cache_id!r} appears twice in one apply")
            seen.add(cache_id)
        rows = [cache_row(c) if c.phase is Phase.READY else None for c in ups]
        with self._write:
            gone: list[ImageCache] = []
            for cache_id in ids:
                found = self._caches.get(cache_id)
                if found is None:
                    raise UnknownCacheError(f"no image cache {cache_id!r} in the index")
                gone.append(found)
            ops: list[tuple[int, Any, tuple[Any, ...] | None]] = []
            kept: list[int] = []  # the upserts that take a slot, by their place in ops
            for cache, row in zip(ups, rows):
                slot = self._slots.get(cache.id, -1)
                if row is not None:
                    kept.append(len(ops))
                    ops.append((slot, cache, row))
                elif slot >= 0:
                    ops.append((slot, None, None))
            for cache_id in ids:
                slot = self._slots.get(cache_id, -1)
                if slot >= 0:
                    ops.append((slot, None, None))
            slots = self._core.apply(ops) if ops else []
            # The core has changed: from here on nothing can fail.
            for cache, row in zip(ups, rows):
                old = self._caches.get(cache.id)
                if row is None:  # not Ready: kept, but out of the core
                    self._slots.pop(cache.id, None)
                if old is not None:
                    self._untrack(old)
                self._caches.put(cache)
                self._track(cache)
            for place in kept:
                self._slots[ops[place][1].id] = slots[place]
            for cache_id, removed in zip(ids, gone):
                self._slots.pop(cache_id, None)
                self._caches.pop(cache_id)
                self._untrack(removed)
            return gone

    def discard(self, cache_id: str) -> bool:
        """Remove the cache with this id if there is one; tell whether there was."""
        try:
            self.remove(cache_id)
        except UnknownCacheError:
            return False
        return True

    def record_match(self, cache_id: str, now: TimeLike | None = None) -> ImageCache:
        """Record that a pod was matched to ``cache_id`` at ``now`` (SPEC §4).

        The cache's ``last_matched`` becomes ``now`` (never earlier than it was:
        :func:`fastmatch.lifecycle.record_match`), which extends the life of an
        auto-created cache.  Returns the cache as it now is.
        """
        with self._write:
            cache = self[cache_id]
            updated = lifecycle.record_match(cache, utcnow() if now is None else now)
        if updated is not cache:
            self.upsert(updated)
        return updated

    def expired(self, now: TimeLike | None = None) -> list[ImageCache]:
        """The caches that have expired at ``now`` (SPEC §4), by id."""
        expired = lifecycle.expired(self, utcnow() if now is None else now)
        return sorted(expired, key=_by_id)

    # -- matching -------------------------------------------------------------

    def match(
        self,
        images: Iterable[ImageLike],
        policy: MatchPolicy | None = None,
        *,
        pod_name: str = "",
        now: TimeLike | None = None,
    ) -> MatchResult:
        """Choose a cache for a pod with these images (SPEC §3)."""
        # This is a scheduler's hot path: the common pod (a list of one
        # resolved image, the default policy) costs as little Python as can be.
        if policy is None:
            policy = _DEFAULT_POLICY
        elif type(policy) is not MatchPolicy:
            policy = _policy(policy)
        if type(pod_name) is not str:
            raise ValidationError(f"pod_name must be a string, got {pod_name!r}")
        if type(images) is list and len(images) == 1 and type(images[0]) is Image:
            pod: tuple[Image, ...] = (images[0],)
            keys: list[Any] = [images[0].layer_sizes()]
        else:
            pod = pod_images(images, f"pod {pod_name}" if pod_name else "pod")
            keys = pod_keys(pod)
        now_us = micros_at(now)
        if policy.cache_id is not None or not policy.auto:
            return self._direct(pod, policy, now_us)  # type: ignore[return-value]
        n = len(pod)
        tied, full, covered, distance, pod_bytes = self._core.score_one(
            keys, policy.min_full(n), policy.storage_gib, policy.arch, policy.os, now_us
        )
        if full == n and len(tied) == 1 and not self._by_reference:  # the common hit
            cache = tied[0]
            if type(cache) is not ImageCache:
                cache = self._caches.resolve(cache)
            # decision.hit, inlined: every image cached, nothing to propose.
            why = (reason_used, cache, False, n, n, covered, pod_bytes)
            return _use(cache, False, n, covered, n, distance, why)
        return self._conclude(
            pod, policy, pod_name, tied, full, covered, distance, pod_bytes, now_us, None
        )

    def match_pod(self, request: PodLike, *, now: TimeLike | None = None) -> MatchResult:
        """:meth:`match` with a pod request's images, policy and name (SPEC §8)."""
        try:
            images, policy, name = request.images, request.policy, request.name
        except AttributeError:
            raise ValidationError(
                f"match_pod: expected a PodRequest, got {type(request).__name__}"
            ) from None
        return self.match(images, policy, pod_name=name, now=now)

    def match_many(
        self,
        pods: Iterable[Iterable[ImageLike]],
        policies: Iterable[MatchPolicy | None] | MatchPolicy | None = None,
        *,
        now: TimeLike | None = None,
        threads: int | None = None,
        pod_names: Iterable[str] | None = None,
        replicas: Iterable[int] | None = None,
    ) -> list[MatchResult]:
        """Choose a cache for each of many pods in one call.

        ``policies`` is one policy for all pods or one per pod (``None`` means
        the default policy).  The scoring runs without the GIL on ``threads``
        threads (default: every core this process may use).  Replicas propose
        one cache to create between them: the first pod of each image set
        proposes it, the others say so (SPEC §3.7).

        ``replicas``: how many identical pods each entry stands for (a
        workload's, named after its first in ``pod_names``; default one each):
        the result holds one decision per pod, an entry's consecutively, the
        same as listing every replica, at the cost of one entry.
        """
        return batch.match_many(
            self._core,
            pods,
            policies,
            now_us=micros_at(now),
            threads=threads,
            pod_names=pod_names,
            replicas=replicas,
            default_policy=_DEFAULT_POLICY,
            check_policy=_policy,
            direct=self._direct,
            conclude=self._conclude,
        )

    def _direct(
        self, pod: tuple[Image, ...], policy: MatchPolicy, now_us: int
    ) -> MatchResult | None:
        """The decision when no scoring of all caches is needed: a named cache, or auto off."""
        cache_id = policy.cache_id
        if cache_id is not None:
            layers = decision.pod_layers(pod)
            nbytes = sum(layers.values())

            def scored(cache: ImageCache) -> tuple[int, int, int, int]:
                return (*decision.score(cache, pod, layers), nbytes)

            return decision.named(cache_id, self._caches.get(cache_id), pod, now_us, scored)
        if not policy.auto:
            return decision.off(policy, len(pod))
        return None

    def _conclude(
        self,
        pod: tuple[Image, ...],
        policy: MatchPolicy,
        pod_name: str,
        tied: list[Any],
        full: int,
        covered: int,
        distance: int,
        pod_bytes: int,
        now_us: int,
        proposals: decision.Batch | None,
    ) -> MatchResult:
        """SPEC §3.6-3.8 from the core's best candidates (``tied``) and their scores."""
        if full == len(pod) and len(tied) == 1 and not self._by_reference:  # the common hit
            cache = tied[0]
            if type(cache) is not ImageCache:
                cache = self._caches.resolve(cache)
            # decision.hit, inlined (as in match).
            why = (reason_used, cache, False, full, full, covered, pod_bytes)
            return _use(cache, False, full, covered, full, distance, why)
        best: Best | None = None
        if tied:
            resolve = self._caches.resolve
            if len(tied) == 1:
                cache = resolve(tied[0])
            else:  # exact tie on every score: the smallest id, for a deterministic choice
                cache = min((resolve(c) for c in tied), key=_by_id)
            best = (cache, full, covered, distance)
        if self._by_reference:
            best = self._by_reference_best(pod, policy, tied, best, now_us)
        return decision.conclude(
            pod,
            policy,
            pod_name,
            best,
            pod_bytes,
            self._building,
            now_us,
            self._timeout,
            proposals,
        )

    def _by_reference_best(
        self,
        pod: tuple[Image, ...],
        policy: MatchPolicy,
        tied: list[Any],
        best: Best | None,
        now_us: int,
    ) -> Best | None:
        """The best candidate once the caches listing a pod image by reference are scored.

        The core scored those caches by their layers alone, never above their
        real score; every other cache it scored exactly.  So the best is among
        the core's tied candidates that list none of the pod's images by
        reference, and those caches rescored here.
        """
        ids: set[str] = set()
        for image in pod:
            if image.layers:
                for key in image.keys:
                    found = self._by_reference.get(key)
                    if found:
                        ids.update(found)
        if not ids:
            return best
        layers = decision.pod_layers(pod)
        bar = policy.min_full(len(pod))
        options: list[Best] = []
        if best is not None:
            resolve = self._caches.resolve
            others = [c for c in (resolve(t) for t in tied) if c.id not in ids]
            if others:
                options.append((min(others, key=_by_id), *best[1:]))
        for cache_id in ids:
            cache = self._caches.get(cache_id)
            if cache is None or not decision.candidate(cache, policy, now_us):
                continue
            full, covered, distance = decision.score(cache, pod, layers)
            if decision.eligible(full, covered, bar):
                options.append((cache, full, covered, distance))
        if not options:
            return None
        return min(options, key=lambda b: decision.order_key(b[1], b[2], b[3], b[0]))


def _by_id(cache: ImageCache) -> str:
    return cache.id


def _unpickle(data: bytes, creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT) -> CacheIndex:
    return CacheIndex._from_snapshot(Snapshot.read(io.BytesIO(data)), creation_timeout)
