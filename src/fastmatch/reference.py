"""The plain-Python reference of the scoring and the decision (SPEC §3).

Short and obviously correct, with no index and no tricks: every cache is
looked at for every pod.  The property tests hold the compiled core to it,
field by field; the benchmarks use it as the slowest honest baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

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
from fastmatch.result import MatchResult
from fastmatch.timeutil import TimeLike, to_datetime, to_micros, utcnow

__all__ = ["ReferenceIndex", "decide", "score"]

_BEING_CREATED = (Phase.PREPARING, Phase.CREATING)


def score(cache: ImageCache, images: tuple[Image, ...]) -> tuple[int, int, int, int]:
    """``full``, ``covered``, ``distance`` and shared layers of ``cache`` for a pod's images."""
    held = cache.layer_sizes()
    pod: dict[str, int] = {}
    for image in images:
        pod.update(image.layer_sizes())
    full = sum(all(d in held for d in image.layer_sizes()) for image in images)
    covered = sum(size for d, size in pod.items() if d in held)
    distance = abs(sum(held.values()) - sum(pod.values()))
    shared = sum(d in held for d in pod)
    return full, covered, distance, shared


def _candidate(cache: ImageCache, policy: MatchPolicy, now: datetime) -> bool:
    if cache.phase is not Phase.READY or cache.expired(now):
        return False
    if policy.storage_gib is not None and cache.size_gib > policy.storage_gib:
        return False
    if policy.arch and cache.arch and policy.arch != cache.arch:
        return False
    return not (policy.os and cache.os and policy.os != cache.os)


def decide(
    caches: Iterable[ImageCache],
    images: Iterable[ImageLike],
    policy: MatchPolicy | None = None,
    *,
    pod_name: str = "",
    now: TimeLike | None = None,
) -> MatchResult:
    """The decision of SPEC §3 for one pod, over every cache in ``caches``."""
    policy = policy if policy is not None else MatchPolicy()
    when = utcnow() if now is None else to_datetime(now)
    caches = list(caches)
    pod = distinct_images(images)
    n = len(pod)
    pod_sizes: dict[str, int] = {}
    for image in pod:
        pod_sizes.update(image.layer_sizes())
    pod_bytes = sum(pod_sizes.values())

    if policy.cache_id is not None:
        named = next((c for c in caches if c.id == policy.cache_id), None)
        if named is None or named.phase is not Phase.READY:
            return MatchResult(
                "reject",
                policy.cache_id,
                True,
                0,
                0,
                n,
                False,
                None,
                reason_rejected(policy.cache_id, named),
            )
        full, covered, distance, _ = score(named, pod)
        return MatchResult(
            "use",
            named.id,
            True,
            full,
            covered,
            n,
            full == n,
            None,
            reason_used(named, True, full, n, covered, pod_bytes),
            distance,
            named,
        )

    if not policy.auto:
        return MatchResult("none", None, False, 0, 0, n, False, None, reason_none(policy, n, None))

    bar = policy.min_full(n)
    eligible = []
    for cache in caches:
        if not _candidate(cache, policy, when):
            continue
        full, covered, distance, shared = score(cache, pod)
        # With no bar at all (allow_partial), any shared layer makes a partial hit.
        if full >= bar and (bar > 0 or shared > 0):
            eligible.append((full, covered, distance, cache))
    eligible.sort(key=lambda e: (-e[0], -e[1], e[2], -to_micros(e[3].created), e[3].id))

    create: CreateProposal | None = None
    creating: str | None = None
    if not eligible or eligible[0][0] < n:
        wanted = frozenset(image.key for image in pod)
        building = sorted(
            c.id for c in caches if c.phase in _BEING_CREATED and c.image_set == wanted
        )
        if building:
            creating = building[0]
        else:
            create = CreateProposal(
                proposal_name(pod_name), pod, AUTO_CREATE_BASE_GIB + policy.extra_storage_gib
            )
    if not eligible:
        return MatchResult(
            "none", None, False, 0, 0, n, False, create, reason_none(policy, n, create, creating)
        )
    full, covered, distance, best = eligible[0]
    return MatchResult(
        "use",
        best.id,
        False,
        full,
        covered,
        n,
        full == n,
        create,
        reason_used(best, False, full, n, covered, pod_bytes, create),
        distance,
        best,
    )


class ReferenceIndex:
    """A dictionary of caches with the reference decision: the slow, sure baseline."""

    def __init__(self, caches: Iterable[ImageCache] = ()) -> None:
        self._caches: dict[str, ImageCache] = {c.id: c for c in caches}

    def upsert(self, cache: ImageCache) -> None:
        """Add a cache, or replace the one with the same id."""
        self._caches[cache.id] = cache

    def remove(self, cache_id: str) -> None:
        """Forget a cache; a missing id is ignored."""
        self._caches.pop(cache_id, None)

    def __len__(self) -> int:
        return len(self._caches)

    def __contains__(self, cache_id: object) -> bool:
        return cache_id in self._caches

    def get(self, cache_id: str) -> ImageCache | None:
        """The cache with this id, or ``None``."""
        return self._caches.get(cache_id)

    def match(
        self,
        images: Iterable[ImageLike],
        policy: MatchPolicy | None = None,
        *,
        pod_name: str = "",
        now: TimeLike | None = None,
    ) -> MatchResult:
        """The reference decision for one pod."""
        return decide(self._caches.values(), images, policy, pod_name=pod_name, now=now)

    def match_many(
        self,
        pods: Iterable[Iterable[ImageLike]],
        policies: Iterable[MatchPolicy | None] | MatchPolicy | None = None,
        *,
        now: TimeLike | None = None,
        pod_names: Iterable[str] | None = None,
    ) -> list[MatchResult]:
        """The reference decision for many pods."""
        pods = list(pods)
        if policies is None or isinstance(policies, MatchPolicy):
            policy_list: list[MatchPolicy | None] = [policies] * len(pods)
        else:
            policy_list = list(policies)
        names = list(pod_names) if pod_names is not None else [""] * len(pods)
        when = utcnow() if now is None else now
        return [
            self.match(p, pol, pod_name=nm, now=when)
            for p, pol, nm in zip(pods, policy_list, names)
        ]

    def caches(self) -> Mapping[str, ImageCache]:
        """The caches, by id."""
        return dict(self._caches)
