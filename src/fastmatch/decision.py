"""The decision of SPEC §3, one rule after another, as the spec reads.

Both implementations decide through this module: :class:`~fastmatch.CacheIndex`
finds the best candidates with its compiled core, :mod:`fastmatch.reference`
by looking at every cache; each then hands the best one to :func:`conclude`,
which adds what §3.7 says about creating a cache and words the result.

- §3.1 :func:`named`: a named cache must exist, be ``Ready`` and not expired.
- §3.3 :func:`candidate`: ``Ready``, not expired, fits the storage limit, agrees on platform.
- §3.4 :func:`score`: ``full``, ``covered``, ``distance``, with images the same
  across reference and layers (§1).
- §3.5 :func:`bar` and :func:`eligible`.
- §3.6 :func:`order_key`.
- §3.7 :func:`propose`, :class:`ImageSets` (the caches being built, and the
  proposals already made in one batch) and :func:`conclude`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from fastmatch.explain import Proposal, reason_none, reason_rejected, reason_used
from fastmatch.model import (
    AUTO_CREATE_BASE_GIB,
    MAX_IMAGES_PER_CACHE,
    MAX_SIZE_GIB,
    CreateProposal,
    Image,
    ImageCache,
    Phase,
    proposal_name,
    same_image_set,
)
from fastmatch.policy import MatchPolicy
from fastmatch.result import LazyProposal, MatchResult
from fastmatch.timeutil import from_micros, to_micros

__all__ = [
    "BEING_CREATED",
    "DEFAULT_CREATION_TIMEOUT",
    "Batch",
    "Best",
    "ImageSets",
    "Score",
    "bar",
    "building",
    "candidate",
    "conclude",
    "eligible",
    "hit",
    "named",
    "off",
    "order_key",
    "proposal_images",
    "propose",
    "proposed_before",
    "score",
]

BEING_CREATED = (Phase.PREPARING, Phase.CREATING)
# A cache still building after this long is taken to be stuck (§3.7).
DEFAULT_CREATION_TIMEOUT = timedelta(hours=2)


class Score(NamedTuple):
    """A cache's scores for a pod (§3.4)."""

    full: int
    covered: int
    distance: int


# The chosen candidate and its scores: (cache, full, covered, distance).  A plain
# tuple: one is made for every match.
Best = tuple[ImageCache, int, int, int]


# -- §3.1 ---------------------------------------------------------------------


def named(
    cache_id: str,
    cache: ImageCache | None,
    pod: tuple[Image, ...],
    now_us: int,
    scored: Callable[[ImageCache], tuple[int, int, int, int]],
) -> MatchResult:
    """The decision for a pod naming ``cache_id`` (``cache`` is it, or ``None``).

    Used whatever it holds when it is ``Ready`` and not expired at ``now_us``;
    otherwise the pod is rejected.  ``scored(cache)`` gives ``(full, covered,
    distance, pod_bytes)`` for the result.
    """
    n = len(pod)
    if cache is None or cache.phase is not Phase.READY or cache.expired(from_micros(now_us)):
        return MatchResult.reject(cache_id, n, (reason_rejected, cache_id, cache))
    full, covered, distance, pod_bytes = scored(cache)
    return MatchResult.use(
        cache, True, full, covered, n, distance, (reason_used, cache, True, full, n, covered,
                                                  pod_bytes)
    )


# -- §3.2 ---------------------------------------------------------------------


def off(policy: MatchPolicy, n: int) -> MatchResult:
    """The decision for a pod with automatic matching off: no cache, nothing proposed."""
    return MatchResult.none(n, (reason_none, policy, n))


# -- §3.3 ---------------------------------------------------------------------


def candidate(cache: ImageCache, policy: MatchPolicy, now_us: int) -> bool:
    """Whether ``cache`` may serve a pod with ``policy`` at ``now_us`` at all."""
    if cache.phase is not Phase.READY or cache.expired(from_micros(now_us)):
        return False
    if policy.storage_gib is not None and cache.size_gib > policy.storage_gib:
        return False
    if policy.arch and cache.arch and policy.arch != cache.arch:
        return False
    return not (policy.os and cache.os and policy.os != cache.os)


# -- §3.4 ---------------------------------------------------------------------


def pod_layers(pod: Iterable[Image]) -> dict[str, int]:
    """The pod's distinct layers, key to size (pseudo-layers for images known by reference)."""
    layers: dict[str, int] = {}
    for image in pod:
        layers.update(image.layer_sizes())
    return layers


def score(
    cache: ImageCache, pod: tuple[Image, ...], layers: Mapping[str, int] | None = None
) -> Score:
    """``full``, ``covered`` and ``distance`` of ``cache`` for a pod's distinct images.

    An image is fully in the cache when all its layers are (another tag of it,
    or an image whose layers lie inside a cached one, count), or when one side
    knows it only by reference and the other has the same reference or digest
    (§1): a pod image known by reference is held by a cache listing an image
    with that identity, and a pod image whose layers are known is held whole by
    a cache that lists its reference without layers; its layers then count as
    covered.  ``layers`` is :func:`pod_layers` of ``pod`` when the caller has it.
    """
    held = cache.layer_sizes()
    by_reference = cache.by_reference
    if layers is None:
        layers = pod_layers(pod)
    full = 0
    whole: set[str] = set()  # layers of images the cache holds by reference
    for image in pod:
        sizes = image.layer_sizes()
        if by_reference and image.layers and any(k in by_reference for k in image.keys):
            full += 1
            whole.update(sizes)
        elif all(key in held for key in sizes):
            full += 1
    covered = sum(size for key, size in layers.items() if key in held or key in whole)
    return Score(full, covered, abs(cache.bytes - sum(layers.values())))


# -- §3.5 ---------------------------------------------------------------------


def bar(policy: MatchPolicy, n: int) -> int:
    """How many of a pod's ``n`` images a cache must hold fully; 0 means any real bytes."""
    return policy.min_full(n)


def eligible(full: int, covered: int, bar: int) -> bool:
    """Whether a candidate with these scores clears the bar (0: an image or any bytes)."""
    return full >= bar if bar > 0 else full > 0 or covered > 0


# -- §3.6 ---------------------------------------------------------------------


def order_key(full: int, covered: int, distance: int, cache: ImageCache) -> tuple[object, ...]:
    """Sort key of a candidate, best first: full, covered, closest size, newest, then id."""
    return (-full, -covered, distance, -to_micros(cache.created), cache.id)


# -- §3.7 ---------------------------------------------------------------------


def propose(
    pod: tuple[Image, ...], policy: MatchPolicy, pod_name: str
) -> tuple[CreateProposal, int]:
    """The cache to create for a pod, within ECI's limits, and how many images it leaves out.

    A pod with more than 20 images proposes its 20 largest (in the pod's order);
    the size is 30 GiB plus the pod's extra storage, at most 32768 GiB.
    """
    images, dropped = proposal_images(pod)
    return _proposal(images, _proposal_gib(policy), pod_name), dropped


def proposal_images(pod: tuple[Image, ...]) -> tuple[tuple[Image, ...], int]:
    """The images a proposal for ``pod`` holds (its 20 largest, in the pod's order, when
    it has more) and how many it leaves out."""
    dropped = len(pod) - MAX_IMAGES_PER_CACHE
    if dropped <= 0:
        return pod, 0
    by_size = sorted(range(len(pod)), key=lambda i: (-pod[i].size, i))
    return tuple(pod[i] for i in sorted(by_size[:MAX_IMAGES_PER_CACHE])), dropped


def _proposal_gib(policy: MatchPolicy) -> int:
    size = AUTO_CREATE_BASE_GIB + policy.extra_storage_gib
    return size if size <= MAX_SIZE_GIB else MAX_SIZE_GIB


def _proposal(images: tuple[Image, ...], size_gib: int, pod_name: str) -> CreateProposal:
    return CreateProposal.within_limits(proposal_name(pod_name), images, size_gib)


T = TypeVar("T")
_UNSET: Any = object()  # "not computed by the caller"
LayerSets = frozenset[frozenset[str]] | None  # what ImageSets.key gives
_MICROSECOND = timedelta(microseconds=1)


class ImageSets(Generic[T]):
    """Values filed under an image set, found again by any image set that is the same (§1).

    Sets whose every image knows its layers are filed under the set of their
    layer sets, where :func:`~fastmatch.model.same_image` is plain equality,
    and found by one dictionary read.  Every set is also filed under the
    identities (references and digests) of its images, for the sets that
    mention an image by reference only: those are compared with
    :func:`~fastmatch.model.same_image_set`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Filed[T]] = {}
        self._exact: dict[frozenset[frozenset[str]], dict[str, _Filed[T]]] = {}
        # Every entry by identity, built when a set with a by-reference image is
        # first looked for (most lookups never need it).
        self._by_key: dict[str, dict[str, _Filed[T]]] | None = None
        self._loose: dict[str, dict[str, _Filed[T]]] = {}  # entries with a by-reference image

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(images: tuple[Image, ...]) -> frozenset[frozenset[str]] | None:
        """The set of the images' layer sets, or ``None`` if an image's layers are unknown:
        what :meth:`add` and :meth:`find` compute, for a caller doing both."""
        sets = []
        for image in images:
            if not image.layers:
                return None
            sets.append(image.layer_set)
        return frozenset(sets)

    def add(self, name: str, images: tuple[Image, ...], value: T, key: LayerSets = _UNSET) -> None:
        """File ``value`` under ``name`` (replacing what ``name`` had) for ``images``
        (whose :meth:`key` the caller may pass)."""
        if name in self._entries:
            self.discard(name)
        exact = self.key(images) if key is _UNSET else key
        entry = _Filed(images, value, exact)
        self._entries[name] = entry
        if exact is not None:
            self._exact.setdefault(exact, {})[name] = entry
        if exact is None or self._by_key is not None:
            self._file_keys(name, entry)

    def _file_keys(self, name: str, entry: _Filed[T]) -> None:
        for image in entry.images:
            for ident in image.keys:
                if self._by_key is not None:
                    self._by_key.setdefault(ident, {})[name] = entry
                if entry.exact is None:
                    self._loose.setdefault(ident, {})[name] = entry

    def discard(self, name: str) -> None:
        """Forget ``name``, if it is filed."""
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        if entry.exact is not None:
            _unfile(self._exact, entry.exact, name)
        for image in entry.images:
            for ident in image.keys:
                if self._by_key is not None:
                    _unfile(self._by_key, ident, name)
                _unfile(self._loose, ident, name)

    def find(self, images: tuple[Image, ...], key: LayerSets = _UNSET) -> list[tuple[str, T]]:
        """Every ``(name, value)`` filed under the same image set as ``images``, by name
        (the caller may pass their :meth:`key`)."""
        if not self._entries:
            return []
        exact = self.key(images) if key is _UNSET else key
        if exact is not None and not self._loose:  # the common case: one dictionary read
            same = self._exact.get(exact)
            return sorted((name, entry.value) for name, entry in same.items()) if same else []
        found: dict[str, _Filed[T]] = {}
        if exact is not None:
            found.update(self._exact.get(exact, ()))
        if exact is None and self._by_key is None:
            self._by_key = {}
            for name, entry in self._entries.items():
                self._file_keys(name, entry)
        index = self._by_key if exact is None else self._loose
        if index:
            # A set that lists an image by reference shares that reference (or
            # digest) with the same set: the candidates share a key, checked once each.
            candidates: dict[str, _Filed[T]] = {}
            for image in images:
                for ident in image.keys:
                    more = index.get(ident)
                    if more:
                        candidates.update(more)
            for name, entry in candidates.items():
                if name not in found and same_image_set(images, entry.images):
                    found[name] = entry
        return sorted((name, entry.value) for name, entry in found.items())


class _Filed(Generic[T]):
    __slots__ = ("exact", "images", "value")

    def __init__(
        self, images: tuple[Image, ...], value: T, exact: frozenset[frozenset[str]] | None
    ) -> None:
        self.images = images
        self.value = value
        self.exact = exact


K = TypeVar("K")


def _unfile(index: dict[K, dict[str, _Filed[T]]], key: K, name: str) -> None:
    names = index.get(key)
    if names is not None:
        names.pop(name, None)
        if not names:
            del index[key]


def building(
    caches: ImageSets[int],
    images: tuple[Image, ...],
    now_us: int,
    timeout: timedelta,
    key: LayerSets = _UNSET,
) -> tuple[str | None, str | None]:
    """The cache being built for ``images`` (its id), else one stuck past ``timeout``.

    ``caches`` files each ``Preparing``/``Creating`` cache's creation time
    (epoch microseconds) under its images.
    """
    found = caches.find(images, key)
    if not found:
        return None, None
    limit = now_us - timeout // _MICROSECOND
    stuck: str | None = None
    for cache_id, created in found:
        if created > limit:
            return cache_id, None
        if stuck is None:
            stuck = cache_id
    return None, stuck


class Batch:
    """What one ``match_many`` call remembers: the image sets proposed so far, each with
    the first pod that proposed it, so that replicas propose one cache, named after
    that pod (§3.7)."""

    def __init__(self) -> None:
        # While every proposed set knows its layers, a dictionary by layer sets is
        # enough; the first set with an image known by reference moves them all
        # to an ImageSets, which compares identities.
        self._exact: dict[frozenset[frozenset[str]], str] = {}
        self._order: list[tuple[tuple[Image, ...], str]] = []
        self._sets: ImageSets[str] | None = None
        self.filed = 0  # how many proposals were filed: a caller's cheap "did it propose?"

    def earlier(self, images: tuple[Image, ...], key: LayerSets = _UNSET) -> str | None:
        """The pod of this batch that proposed the same image set before, if any."""
        if key is _UNSET:
            key = ImageSets.key(images)
        if self._sets is None:
            if key is not None:
                return self._exact.get(key)
            self._sets = ImageSets()
            for i, (proposed, pod_name) in enumerate(self._order):
                self._sets.add(f"{i:09d}", proposed, pod_name)
        found = self._sets.find(images, key)
        return found[0][1] if found else None

    def file(self, images: tuple[Image, ...], pod_name: str, key: LayerSets = _UNSET) -> None:
        """Remember that ``pod_name`` proposed a cache of ``images``, the first to."""
        if key is _UNSET:
            key = ImageSets.key(images)
        if self._sets is None and key is not None:
            self._exact[key] = pod_name
        else:
            if self._sets is None:
                self.earlier(images, None)  # moves what was filed to the ImageSets
            assert self._sets is not None
            self._sets.add(f"{len(self._order):09d}", images, pod_name, key)
        self._order.append((images, pod_name))
        self.filed += 1


def hit(cache: ImageCache, n: int, covered: int, distance: int, pod_bytes: int) -> MatchResult:
    """The decision when a candidate holds every one of the pod's ``n`` images: use it,
    propose nothing."""
    why = (reason_used, cache, False, n, n, covered, pod_bytes)
    return MatchResult.use(cache, False, n, covered, n, distance, why)


def proposed_before(
    first: MatchResult, policy: MatchPolicy, pod_bytes: int, first_pod: str
) -> MatchResult:
    """The decision for a pod of the same image set as ``first`` (a result that proposes a
    cache, for ``first_pod``) later in one batch: the same choice, no second proposal
    (§3.7)."""
    why = Proposal.earlier_in_batch(first_pod)
    n = first.images
    if first.cache is None:
        return MatchResult.none(n, (reason_none, policy, n, why))
    cache, full, covered = first.cache, first.full, first.covered
    distance = first.distance if first.distance is not None else 0
    partial = (reason_used, cache, False, full, n, covered, pod_bytes, why)
    return MatchResult.use(cache, False, full, covered, n, distance, partial)


def conclude(
    pod: tuple[Image, ...],
    policy: MatchPolicy,
    pod_name: str,
    best: Best | None,
    pod_bytes: int,
    caches_building: ImageSets[int],
    now_us: int,
    timeout: timedelta,
    batch: Batch | None = None,
) -> MatchResult:
    """The decision of §3.6-3.8 once the best eligible candidate (or none) is known.

    With automatic matching on and no cache holding every image, a cache to
    create is proposed, unless one for the same images is being built (younger
    than ``timeout``) or, within ``batch``, was proposed for an earlier pod.
    """
    n = len(pod)
    if best is not None and best[1] == n:
        return hit(best[0], n, best[2], best[3], pod_bytes)
    create: LazyProposal | None
    why: Proposal
    images, dropped = proposal_images(pod)
    key = ImageSets.key(images)
    # An earlier pod of the batch that proposed these images found no cache being
    # built for them, and the caches being built do not change within a batch.
    if batch is not None and (earlier := batch.earlier(images, key)) is not None:
        create, why = None, Proposal.earlier_in_batch(earlier)
    else:
        creating, stuck = building(caches_building, images, now_us, timeout, key)
        if creating is not None:
            create, why = None, Proposal(creating=creating)
        else:
            # Made when first read (most results' proposals never are).
            size = _proposal_gib(policy)
            create = (_proposal, images, size, pod_name)
            why = Proposal.proposing(proposal_name(pod_name), size, stuck, timeout, dropped)
            if batch is not None:
                batch.file(images, pod_name, key)
    if best is None:
        return MatchResult.none(n, (reason_none, policy, n, why), create)
    cache, full, covered, distance = best
    partial = (reason_used, cache, False, full, n, covered, pod_bytes, why)
    return MatchResult.use(cache, False, full, covered, n, distance, partial, create)
