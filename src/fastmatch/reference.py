"""The plain-Python reference implementation of the decision (SPEC §3).

Short and obviously correct, with no index and no tricks: every cache is
looked at for every pod, through the rules of :mod:`fastmatch.decision`.  It
answers to the same names as :class:`~fastmatch.CacheIndex` (as msgpack's
``fallback`` does for its compiled module): the SPEC-example tests run against
both, the property tests hold the compiled index to it field by field, and the
benchmarks use it as the slowest honest baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from fastmatch import decision
from fastmatch.decision import DEFAULT_CREATION_TIMEOUT, Best, ImageSets, score
from fastmatch.errors import ValidationError
from fastmatch.model import ImageCache, ImageLike, distinct_images
from fastmatch.policy import MatchPolicy
from fastmatch.result import MatchResult
from fastmatch.timeutil import TimeLike, micros_at, to_datetime, to_micros, utcnow

__all__ = ["ReferenceIndex", "decide", "score"]


def decide(
    caches: Iterable[ImageCache],
    images: Iterable[ImageLike],
    policy: MatchPolicy | None = None,
    *,
    pod_name: str = "",
    now: TimeLike | None = None,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    batch: decision.Batch | None = None,
) -> MatchResult:
    """The decision of SPEC §3 for one pod, over every cache in ``caches``."""
    policy = policy if policy is not None else MatchPolicy()
    if not isinstance(policy, MatchPolicy):
        raise ValidationError(f"policy must be a MatchPolicy, got {type(policy).__name__}")
    now_us = micros_at(now)
    caches = list(caches)
    pod = distinct_images(images)
    if not pod:
        raise ValidationError("pod: a pod needs at least one image")
    layers = decision.pod_layers(pod)
    pod_bytes = sum(layers.values())

    if policy.cache_id is not None:
        cache = next((c for c in caches if c.id == policy.cache_id), None)
        return decision.named(
            policy.cache_id, cache, pod, now_us, lambda c: (*score(c, pod, layers), pod_bytes)
        )
    if not policy.auto:
        return decision.off(policy, len(pod))

    bar = decision.bar(policy, len(pod))
    eligible: list[Best] = []
    for cache in caches:
        if decision.candidate(cache, policy, now_us):
            full, covered, distance = score(cache, pod, layers)
            if decision.eligible(full, covered, bar):
                eligible.append((cache, full, covered, distance))
    eligible.sort(key=lambda b: decision.order_key(b[1], b[2], b[3], b[0]))
    building: ImageSets[int] = ImageSets()
    for cache in caches:
        if cache.phase in decision.BEING_CREATED:
            building.add(cache.id, cache.images, to_micros(cache.created))
    return decision.conclude(
        pod,
        policy,
        pod_name,
        eligible[0] if eligible else None,
        pod_bytes,
        building,
        now_us,
        creation_timeout,
        batch,
    )


class ReferenceIndex:
    """A dictionary of caches with the reference decision: the slow, sure baseline."""

    def __init__(
        self,
        caches: Iterable[ImageCache] = (),
        *,
        creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    ) -> None:
        self._caches: dict[str, ImageCache] = {c.id: c for c in caches}
        self.creation_timeout = creation_timeout

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
        return decide(
            self._caches.values(),
            images,
            policy,
            pod_name=pod_name,
            now=now,
            creation_timeout=self.creation_timeout,
        )

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
        when = utcnow() if now is None else to_datetime(now, "now")
        batch = decision.Batch()  # one proposal per image set within the call
        return [
            decide(
                self._caches.values(),
                p,
                pol,
                pod_name=nm,
                now=when,
                creation_timeout=self.creation_timeout,
                batch=batch,
            )
            for p, pol, nm in zip(pods, policy_list, names)
        ]

    def caches(self) -> Mapping[str, ImageCache]:
        """The caches, by id."""
        return dict(self._caches)
