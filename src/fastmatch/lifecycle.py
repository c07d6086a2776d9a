"""The lifecycle of image caches: expiry, quota eviction, recording matches (SPEC §4).

ECI keeps a cache with ``retentionDays`` that many days after its creation
and a ``Failed`` cache one day.  A cache ECI created by itself for a pod
(``auto_created``) is kept 7 days if no pod ever matched it, else 30 days
after the last match; over a quota of such caches, the least recently
matched go first.

The expiry rule itself lives in :attr:`fastmatch.model.ImageCache.expires_at`;
this module applies it to many caches and says what to delete.  Nothing
here deletes or mutates anything: the functions return lists and copies,
and the caller acts on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from fastmatch.errors import ValidationError
from fastmatch.model import ImageCache
from fastmatch.timeutil import TimeLike, to_datetime

__all__ = [
    "evict_over_quota",
    "eviction_order",
    "expired",
    "expires_in",
    "last_activity",
    "record_match",
    "retention_of",
]


def expired(caches: Iterable[ImageCache], now: TimeLike) -> list[ImageCache]:
    """The caches that have expired at ``now``, in the order given.

    A cache has expired once its :attr:`~fastmatch.model.ImageCache.expires_at`
    is at or before ``now``; a cache that never expires is never listed.
    """
    at = to_datetime(now, "expired: now")
    return [cache for cache in caches if cache.expired(at)]


def last_activity(cache: ImageCache) -> datetime:
    """When the cache was last of use: its last match, or its creation if never matched."""
    return cache.last_matched if cache.last_matched is not None else cache.created


def retention_of(cache: ImageCache) -> timedelta | None:
    """How long the cache is kept after its last activity, or ``None`` if kept for good.

    The last activity is the last match for a matched auto-created cache and
    the creation otherwise, so for an auto-created cache this is 7 days while
    it was never matched and 30 days once it was; for a cache with
    ``retention_days`` it is that many days, for a ``Failed`` one a day.
    When several rules apply, the earliest expiry wins (it is read from
    :attr:`~fastmatch.model.ImageCache.expires_at`), so the value can be
    shorter than the rule of the cache's kind, or negative when an explicit
    expiry came before the last match.
    """
    at = cache.expires_at
    if at is None:
        return None
    anchor = last_activity(cache) if cache.auto_created else cache.created
    return at - anchor


def expires_in(cache: ImageCache, now: TimeLike) -> timedelta | None:
    """How long until the cache expires, counted from ``now`` (negative once it has).

    ``None`` for a cache that never expires.
    """
    at = cache.expires_at
    if at is None:
        return None
    return at - to_datetime(now, f"image cache {cache.id}: now")


def eviction_order(caches: Iterable[ImageCache], now: TimeLike) -> list[ImageCache]:
    """The auto-created caches among ``caches``, first to delete first.

    Expired caches come first, then the least recently matched (a cache never
    matched counts from its creation); ties are broken by id so that the
    order never depends on the order of the input.
    """
    at = to_datetime(now, "eviction_order: now")
    auto = [cache for cache in caches if cache.auto_created]
    return sorted(auto, key=lambda c: (not c.expired(at), last_activity(c), c.id))


def evict_over_quota(caches: Iterable[ImageCache], quota: int, now: TimeLike) -> list[ImageCache]:
    """The auto-created caches to delete so that at most ``quota`` of them remain.

    Only auto-created caches count towards the quota and only they are ever
    chosen; caches a user created are left alone.  When there are ``n > quota``
    auto-created caches, the first ``n - quota`` of :func:`eviction_order` are
    returned (expired first, then least recently matched, ties by id);
    otherwise nothing.
    """
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
        raise ValidationError(
            f"quota of auto-created caches must be an integer >= 0, got {quota!r}"
        )
    order = eviction_order(caches, now)
    excess = len(order) - quota
    return order[:excess] if excess > 0 else []


def record_match(cache: ImageCache, now: TimeLike) -> ImageCache:
    """A copy of ``cache`` that was matched at ``now``.

    ``last_matched`` becomes ``now``, which restarts the 30 days an
    auto-created cache is kept after its last match.  A match recorded out of
    order, earlier than the one already known, does not move ``last_matched``
    back.  The cache passed in is not changed (model objects are immutable).
    """
    at = to_datetime(now, f"image cache {cache.id}: now")
    if cache.last_matched is not None and cache.last_matched >= at:
        return cache
    return cache.replace(last_matched=at)
