"""The cache index: :class:`CacheIndex`, the thin Python face over the compiled core.

Model objects come in, plain keys and numbers go down to ``fastmatch._core``,
and the decision of SPEC §3 is assembled here from what the core scored.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np

from fastmatch import _core
from fastmatch.errors import FastmatchError, ValidationError
from fastmatch.explain import reason_none, reason_rejected, reason_used
from fastmatch.model import (
    AUTO_CREATE_BASE_GIB,
    CreateProposal,
    Image,
    ImageCache,
    ImageLike,
    Phase,
    distinct_images,
    proposal_name,
)
from fastmatch.policy import MatchPolicy
from fastmatch.result import MatchResult, _result
from fastmatch.snapshot import Snapshot
from fastmatch.timeutil import TimeLike, micros_at, to_datetime, utcnow

__all__ = ["CacheIndex", "UnknownCacheError"]

_BEING_CREATED = (Phase.PREPARING, Phase.CREATING)
_CHUNK = 1024  # pods encoded, scored and decided together by match_many
_Scored = tuple[list[Any], int, int, int]
_DEFAULT_POLICY = MatchPolicy()  # immutable, so one serves every call
_new_fields = object.__new__


class UnknownCacheError(FastmatchError, KeyError):
    """No cache with that id is in the index."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown image cache"


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _when(now: TimeLike | None) -> datetime:
    return utcnow() if now is None else to_datetime(now, "now")


def _pod_images(images: Iterable[ImageLike], where: str) -> tuple[Image, ...]:
    """A pod's distinct images; a pod without any is bad input."""
    pod = distinct_images(images, where)
    if not pod:
        raise ValidationError(f"{where}: a pod needs at least one image")
    return pod


def _done(job: Future[list[_Scored]] | list[_Scored]) -> list[_Scored]:
    return job if isinstance(job, list) else job.result()


class CacheIndex:
    """Image caches, indexed for matching pods against them (SPEC §3, §7).

    >>> import fastmatch as fm
    >>> idx = fm.CacheIndex()
    >>> idx.upsert(fm.ImageCache("imc-1", ["nginx:1.25"]))
    >>> idx.match(["nginx:1.25"]).cache_id
    'imc-1'

    Thread-safe: any number of threads may match while others upsert and
    remove; a match sees each cache as it was before or after an upsert.
    """

    def __init__(self, caches: Iterable[ImageCache] = ()) -> None:
        self._core = _core.Core()
        # A value is the cache, or (after load) its row in the snapshot, built on demand.
        self._caches: dict[str, ImageCache | int] = {}
        self._slots: dict[str, int] = {}
        self._building: dict[frozenset[str], set[str]] = {}
        self._write = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._built: dict[int, ImageCache] = {}
        self._build(caches)

    def _build(self, caches: Iterable[ImageCache]) -> None:
        """Load ``caches`` into this new, empty index in one pass of the core.

        The same index as upserting them in order (a later cache replaces an
        earlier one with its id), built in bulk; nothing is kept if one is bad.
        """
        latest: dict[str, ImageCache] = {}
        for cache in caches:
            if not isinstance(cache, ImageCache):
                raise ValidationError(f"upsert takes an ImageCache, got {type(cache).__name__}")
            latest[cache.id] = cache  # a later one replaces it in its place, as upsert does
        if not latest:
            return
        ready = [c for c in latest.values() if c.phase is Phase.READY]
        never = _core.NEVER
        self._core.build(
            ready,
            [c._identities for c in ready],
            [c._image_sizes for c in ready],
            [c.bytes for c in ready],
            [c._span[0] for c in ready],
            [never if c._span[1] is None else c._span[1] for c in ready],
            [c.size_gib for c in ready],
            [c.arch for c in ready],
            [c.os for c in ready],
        )
        self._core.compact()
        self._slots = {c.id: slot for slot, c in enumerate(ready)}
        self._caches.update(latest)
        for cache in latest.values():
            if cache.phase in _BEING_CREATED:
                self._building.setdefault(cache.image_set, set()).add(cache.id)

    def compact(self) -> None:
        """Give back the spare capacity of the index's arrays.

        Growing arrays keep room to grow; after a bulk load or many removes,
        this brings memory down to what the caches need.  Matches may run
        meanwhile.
        """
        self._core.compact()

    def _resolve(self, value: ImageCache | int) -> ImageCache:
        """The cache for a value of ``_caches`` or an object of the core."""
        if isinstance(value, ImageCache):
            return value
        cache = self._built.get(value)
        if cache is None:
            assert self._snapshot is not None
            cache = self._built.setdefault(value, self._snapshot.cache(value))
        return cache

    # -- persistence ----------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` as a snapshot (NumPy ``.npz``), atomically.

        :meth:`load` reads it back in milliseconds, building cache objects
        only when they are asked for.
        """
        Snapshot.write(path, self._arrays())

    def _arrays(self) -> dict[str, Any]:
        with self._write:
            caches = [self._resolve(v) for v in self._caches.values()]
            arrays, keys, platforms, objs = self._core.to_arrays()
            ids = [self._resolve(o).id for o in objs]
        return Snapshot.arrays(caches, (arrays, keys, platforms, ids))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CacheIndex:
        """Read an index written by :meth:`save`.

        A file that is not a snapshot raises :class:`~fastmatch.InputFileError`
        naming it; nothing is half-loaded.
        """
        return cls._from_snapshot(Snapshot.read(path))

    @classmethod
    def _from_snapshot(cls, snap: Snapshot) -> CacheIndex:
        index = cls()
        rows = snap.core_row.tolist()
        try:
            index._core = _core.Core.from_arrays(snap.core, snap.keys, snap.platforms, rows)
        except ValueError as exc:
            raise FastmatchError(f"{snap.where}: inconsistent snapshot ({exc})") from None
        index._snapshot = snap
        index._caches = dict(zip(snap.ids, range(len(snap.ids))))
        codes = [i for i, phase in enumerate(Phase) if phase in _BEING_CREATED]
        for row in np.flatnonzero(np.isin(snap.phase, codes)).tolist():
            index._building.setdefault(snap.image_set(row), set()).add(snap.ids[row])
        index._slots = {snap.ids[row]: slot for slot, row in enumerate(rows)}
        return index

    def __reduce__(self) -> tuple[Any, ...]:
        buffer = io.BytesIO()
        Snapshot.write(buffer, self._arrays())
        return (_unpickle, (buffer.getvalue(),))

    # -- the set of caches ----------------------------------------------------

    def __len__(self) -> int:
        return len(self._caches)

    def __contains__(self, cache_id: object) -> bool:
        return cache_id in self._caches

    def __iter__(self) -> Iterator[ImageCache]:
        return iter([self._resolve(v) for v in list(self._caches.values())])

    def get(self, cache_id: str) -> ImageCache | None:
        """The cache with this id, or ``None``."""
        value = self._caches.get(cache_id)
        return None if value is None else self._resolve(value)

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
        # The core holds the images' layers and the pseudo-layers of their
        # identities; it only iterates the keys of the images' dicts.  All of
        # it was derived (and checked) when the cache was made.
        created, expires = cache._span
        with self._write:
            old = self._caches.get(cache.id)
            slot = self._slots.get(cache.id, -1)
            if cache.phase is Phase.READY:
                self._slots[cache.id] = self._core.replace(
                    slot,
                    cache,
                    cache._identities,
                    cache._image_sizes,
                    cache.bytes,
                    created,
                    _core.NEVER if expires is None else expires,
                    cache.size_gib,
                    cache.arch,
                    cache.os,
                )
            elif slot >= 0:
                self._core.remove(slot)
                del self._slots[cache.id]
            if old is not None and self._phase(old) in _BEING_CREATED:
                self._unmark_building(cache.id, self._image_set(old))
            if cache.phase in _BEING_CREATED:
                self._building.setdefault(cache.image_set, set()).add(cache.id)
            self._caches[cache.id] = cache

    def _phase(self, value: ImageCache | int) -> Phase:
        if isinstance(value, ImageCache):
            return value.phase
        assert self._snapshot is not None
        return self._snapshot.phase_of(value)

    def _image_set(self, value: ImageCache | int) -> frozenset[str]:
        if isinstance(value, ImageCache):
            return value.image_set
        assert self._snapshot is not None
        return self._snapshot.image_set(value)

    def _unmark_building(self, cache_id: str, image_set: frozenset[str]) -> None:
        ids = self._building.get(image_set)
        if ids is not None:
            ids.discard(cache_id)
            if not ids:
                del self._building[image_set]

    def remove(self, cache_id: str) -> ImageCache:
        """Remove the cache with this id and return it; raise if there is none."""
        with self._write:
            value = self._caches.get(cache_id)
            if value is None:
                raise UnknownCacheError(f"no image cache {cache_id!r} in the index")
            cache = self._resolve(value)
            slot = self._slots.pop(cache_id, -1)
            if slot >= 0:
                self._core.remove(slot)
            if cache.phase in _BEING_CREATED:
                self._unmark_building(cache.id, cache.image_set)
            del self._caches[cache_id]
            return cache

    def discard(self, cache_id: str) -> bool:
        """Remove the cache with this id if there is one; tell whether there was."""
        try:
            self.remove(cache_id)
        except UnknownCacheError:
            return False
        return True

    def record_match(self, cache_id: str, now: TimeLike | None = None) -> ImageCache:
        """Record that a pod was matched to ``cache_id`` at ``now`` (SPEC §4).

        The cache's ``last_matched`` is set, which extends the life of an
        auto-created cache.  Returns the updated cache.
        """
        cache = self[cache_id]
        updated = cache.replace(last_matched=_when(now))
        self.upsert(updated)
        return updated

    def expired(self, now: TimeLike | None = None) -> list[ImageCache]:
        """The caches that have expired at ``now`` (SPEC §4), by id."""
        when = _when(now)
        return sorted((c for c in self if c.expired(when)), key=lambda c: c.id)

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
        if type(images) is list and len(images) == 1 and type(images[0]) is Image:
            image = images[0]
            pod: tuple[Image, ...] = (image,)
            sizes = [image._sizes]
        else:
            pod = _pod_images(images, f"pod {pod_name}" if pod_name else "pod")
            # The images' own dicts, read-only here: the core only reads them.
            sizes = [image._sizes for image in pod]
        micros = micros_at(now)
        if policy.cache_id is not None or not policy.auto:
            return self._direct(pod, sizes, policy)
        n = len(pod)
        tied, full, covered, distance, pod_bytes = self._core.score_one(
            sizes,
            policy.min_full(n),
            policy.storage_gib,
            policy.arch,
            policy.os,
            micros,
        )
        return self._decide(pod, policy, pod_name, tied, full, covered, distance, pod_bytes)

    def match_many(
        self,
        pods: Iterable[Iterable[ImageLike]],
        policies: Iterable[MatchPolicy | None] | MatchPolicy | None = None,
        *,
        now: TimeLike | None = None,
        threads: int | None = None,
        pod_names: Iterable[str] | None = None,
    ) -> list[MatchResult]:
        """Choose a cache for each of many pods in one call.

        ``policies`` is one policy for all pods or one per pod (``None`` means
        the default policy).  The scoring runs without the GIL on ``threads``
        threads (default: every core this process may use).
        """
        pod_list = [
            p if type(p) is list else [p] if isinstance(p, (str, Image)) else list(p) for p in pods
        ]
        n = len(pod_list)
        if policies is None or isinstance(policies, MatchPolicy):
            policy_list: list[MatchPolicy | None] = [policies] * n
        else:
            policy_list = list(policies)
            if len(policy_list) != n:
                raise ValidationError(f"match_many: {n} pods but {len(policy_list)} policies")
        names = list(pod_names) if pod_names is not None else [""] * n
        if len(names) != n:
            raise ValidationError(f"match_many: {n} pods but {len(names)} pod names")
        if threads is None:
            threads = _default_threads()
        elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValidationError(
                f"match_many: threads must be a positive integer, got {threads!r}"
            )
        when = micros_at(now)
        # Replicas (the same image objects under the same policy object) are
        # matched once: the pods come in groups, each group decided by its
        # first pod.  Identity, not equality: hashing policies and images
        # costs more than it saves, and callers share those objects.
        owner, firsts = _core.replicas(pod_list, policy_list)
        decided: list[MatchResult | None] = [None] * len(firsts)
        # Groups whose decision proposes a cache (which names the pod), with
        # what it was made of: another replica's name needs its own proposal.
        proposing: dict[int, tuple[tuple[Image, ...], MatchPolicy, _Scored, int]] = {}
        # A chunk's groups the core scores: group, the pod's distinct images,
        # its policy and its bytes.
        Chunk = list[tuple[int, tuple[Image, ...], MatchPolicy, int]]

        def decide(chunk: Chunk, scores: list[_Scored]) -> None:
            for (g, pod, policy, nbytes), score in zip(chunk, scores):
                result = self._decide(pod, policy, names[firsts[g]], *score, nbytes)
                decided[g] = result
                if result.create is not None and pod_names is not None:
                    proposing[g] = (pod, policy, score, nbytes)

        # With more than one thread, a pool thread scores each chunk (without
        # the GIL, on the other threads) while this one builds and encodes the
        # next chunk and decides the last: Python's serial share overlaps the
        # scoring instead of adding to it.
        encode = self._core.encode
        pipelined = threads > 1 and len(firsts) > _CHUNK
        score_threads = threads - 1 if pipelined else threads
        with ThreadPoolExecutor(1) if pipelined else contextlib.nullcontext() as pool:
            pending: tuple[Chunk, Future[list[_Scored]] | list[_Scored]] | None = None
            for start in range(0, len(firsts), _CHUNK):
                batch = self._core.new_batch()
                chunk: Chunk = []
                for g in range(start, min(start + _CHUNK, len(firsts))):
                    i = firsts[g]
                    pol = policy_list[i]
                    policy = pol if pol is not None else _DEFAULT_POLICY
                    images = pod_list[i]
                    if len(images) == 1 and type(images[0]) is Image:  # the common pod
                        pod: tuple[Image, ...] = (images[0],)
                        sizes = [images[0]._sizes]
                    else:
                        pod = _pod_images(images, f"pod {names[i] or i}")
                        sizes = [image._sizes for image in pod]
                    if policy.cache_id is not None or not policy.auto:
                        decided[g] = self._direct(pod, sizes, policy)
                        continue
                    nbytes = encode(
                        batch,
                        sizes,
                        policy.min_full(len(pod)),
                        policy.storage_gib,
                        policy.arch,
                        policy.os,
                    )
                    chunk.append((g, pod, policy, nbytes))
                job: Future[list[_Scored]] | list[_Scored]
                if pool is not None:
                    job = pool.submit(self._core.score_batch, batch, when, score_threads)
                    # Let the pool thread take the GIL now, for the moment it
                    # needs before its scoring lets go of it, rather than after
                    # this thread's next switch interval (5 ms: a chunk's worth).
                    time.sleep(0)
                else:
                    job = self._core.score_batch(batch, when, threads)
                if pending is not None:
                    decide(pending[0], _done(pending[1]))
                pending = (chunk, job)
            if pending is not None:
                decide(pending[0], _done(pending[1]))
        results: list[MatchResult] = [decided[g] for g in owner]  # type: ignore[misc]
        if proposing:
            for i, g in enumerate(owner):
                if g in proposing and names[i] != names[firsts[g]]:
                    pod, policy, score, nbytes = proposing[g]
                    results[i] = self._decide(pod, policy, names[i], *score, nbytes)
        return results

    def _direct(
        self, pod: tuple[Image, ...], sizes: list[dict[str, int]], policy: MatchPolicy
    ) -> MatchResult:
        """The decision when no scoring of all caches is needed: a named cache, or auto off."""
        n = len(pod)
        cache_id = policy.cache_id
        if cache_id is None:  # automatic matching is off
            return _result(
                "none",
                None,
                False,
                0,
                0,
                n,
                False,
                None,
                (reason_none, policy, n, None),
                None,
                None,
            )
        while True:
            value = self._caches.get(cache_id)
            cache = None if value is None else self._resolve(value)
            if cache is None or cache.phase is not Phase.READY:
                return _result(
                    "reject",
                    cache_id,
                    True,
                    0,
                    0,
                    n,
                    False,
                    None,
                    (reason_rejected, cache_id, cache),
                    None,
                    None,
                )
            score = self._core.score_slot(self._slots.get(cache.id, -1), value, sizes)
            if score is not None:
                break  # else the cache was replaced under us: look again
        full, covered, distance, pod_bytes = score
        return _result(
            "use",
            cache.id,
            True,
            full,
            covered,
            n,
            full == n,
            None,
            (reason_used, cache, True, full, n, covered, pod_bytes),
            distance,
            cache,
        )

    def _decide(
        self,
        pod: tuple[Image, ...],
        policy: MatchPolicy,
        pod_name: str,
        tied: list[Any],
        full: int,
        covered: int,
        distance: int,
        pod_bytes: int,
    ) -> MatchResult:
        """SPEC §3.6-3.8 from the core's best candidates (``tied``) and their scores."""
        n = len(pod)
        create: CreateProposal | None = None
        creating: str | None = None
        if not tied or full < n:
            building = self._building.get(frozenset(image.key for image in pod))
            if building:
                creating = min(building)
            else:
                create = CreateProposal(
                    proposal_name(pod_name),
                    pod,
                    AUTO_CREATE_BASE_GIB + policy.extra_storage_gib,
                )
        if not tied:
            return _result(
                "none",
                None,
                False,
                0,
                0,
                n,
                False,
                create,
                (reason_none, policy, n, create, creating),
                None,
                None,
            )
        if len(tied) == 1:
            best = self._resolve(tied[0])
        else:  # exact tie on every score: the smallest id, for a deterministic choice
            best = min((self._resolve(c) for c in tied), key=lambda c: c.id)
        return _result(
            "use",
            best.id,
            False,
            full,
            covered,
            n,
            full == n,
            create,
            (reason_used, best, False, full, n, covered, pod_bytes, create),
            distance,
            best,
        )


def _unpickle(data: bytes) -> CacheIndex:
    return CacheIndex._from_snapshot(Snapshot.read(io.BytesIO(data)))
