"""The lifecycle of image caches (SPEC §4): expiry, quota eviction, recording matches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fastmatch.errors import ValidationError
from fastmatch.lifecycle import (
    evict_over_quota,
    eviction_order,
    expired,
    expires_in,
    last_activity,
    record_match,
    retention_of,
)
from fastmatch.model import ImageCache

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def cache(cache_id: str, **fields: Any) -> ImageCache:
    fields.setdefault("created", T0)
    return ImageCache(cache_id, ["nginx:1.25"], **fields)


def auto(cache_id: str, **fields: Any) -> ImageCache:
    return cache(cache_id, auto_created=True, **fields)


def ids(caches: list[ImageCache]) -> list[str]:
    return [c.id for c in caches]


# --- expiry ---------------------------------------------------------------------------------


def test_retention_days_expire_that_many_days_after_creation() -> None:
    c = cache("imc-retain3", retention_days=3)
    assert expired([c], T0 + 3 * DAY - SECOND) == []
    assert expired([c], T0 + 3 * DAY) == [c]
    assert retention_of(c) == 3 * DAY


def test_a_failed_cache_expires_one_day_after_creation() -> None:
    failed = cache("imc-failed", phase="Failed")
    ready = cache("imc-ready")
    assert expired([failed, ready], T0 + DAY - SECOND) == []
    assert expired([failed, ready], T0 + DAY) == [failed]
    assert retention_of(failed) == DAY


def test_a_failed_cache_with_longer_retention_days_still_goes_after_one_day() -> None:
    c = cache("imc-failed-retained", phase="Failed", retention_days=30)
    assert expired([c], T0 + DAY) == [c]


def test_an_auto_created_cache_never_matched_expires_after_7_days() -> None:
    c = auto("imc-auto")
    assert expired([c], T0 + 7 * DAY - SECOND) == []
    assert expired([c], T0 + 7 * DAY) == [c]
    assert retention_of(c) == 7 * DAY


def test_a_matched_auto_created_cache_expires_30_days_after_its_last_match() -> None:
    c = auto("imc-auto-used", last_matched=T0 + 6 * DAY)
    # Past the 7 days of a never-matched cache, yet kept: it was matched.
    assert expired([c], T0 + 8 * DAY) == []
    assert expired([c], T0 + 36 * DAY - SECOND) == []
    assert expired([c], T0 + 36 * DAY) == [c]
    assert retention_of(c) == 30 * DAY


def test_a_cache_created_by_a_user_without_retention_never_expires() -> None:
    c = cache("imc-forever", last_matched=T0 + DAY)
    assert expired([c], T0 + 10_000 * DAY) == []
    assert retention_of(c) is None
    assert expires_in(c, T0) is None


def test_an_explicit_expiry_counts_even_before_the_rules_would() -> None:
    c = auto("imc-expire-date", expires=T0 + 2 * DAY)
    assert expired([c], T0 + 2 * DAY) == [c]
    assert retention_of(c) == 2 * DAY


def test_expired_keeps_the_order_given_and_drops_the_rest() -> None:
    a, b, c = auto("imc-a"), cache("imc-b"), auto("imc-c", created=T0 - 10 * DAY)
    assert ids(expired([c, b, a], T0 + 7 * DAY)) == ["imc-c", "imc-a"]
    assert expired(iter([a, b, c]), T0) == [c]


@pytest.mark.parametrize(
    "now", [T0 + 7 * DAY, (T0 + 7 * DAY).timestamp(), "2024-03-08T12:00:00Z", "2024-03-08T12:00:00"]
)
def test_now_may_be_a_datetime_epoch_seconds_or_an_iso_time(now: Any) -> None:
    c = auto("imc-auto")
    assert expired([c], now) == [c]


def test_a_bad_now_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="'next tuesday' is not an ISO-8601 time"):
        expired([auto("imc-auto")], "next tuesday")


def test_expires_in_counts_down_and_goes_negative() -> None:
    c = auto("imc-auto")
    assert expires_in(c, T0 + DAY) == 6 * DAY
    assert expires_in(c, T0 + 8 * DAY) == -DAY


# --- quota eviction -------------------------------------------------------------------------


def test_nothing_is_evicted_within_the_quota() -> None:
    caches = [auto("imc-1"), auto("imc-2"), cache("imc-user-1"), cache("imc-user-2")]
    assert evict_over_quota(caches, 2, T0) == []


def test_over_quota_the_least_recently_matched_go_first() -> None:
    now = T0 + 20 * DAY
    caches = [
        auto("imc-recent", last_matched=now - DAY),
        auto("imc-stale", last_matched=now - 15 * DAY),
        auto("imc-middle", last_matched=now - 5 * DAY),
    ]
    assert ids(evict_over_quota(caches, 1, now)) == ["imc-stale", "imc-middle"]
    assert ids(evict_over_quota(caches, 2, now)) == ["imc-stale"]


def test_over_quota_expired_caches_go_before_older_unexpired_ones() -> None:
    now = T0 + 30 * DAY
    # Matched 20 days ago: kept 10 more days.
    old_but_alive = auto("imc-alive", last_matched=now - 20 * DAY)
    # Never matched, created 8 days ago: past its 7 days, though more recent.
    expired_unmatched = auto("imc-expired", created=now - 8 * DAY)
    fresh = auto("imc-fresh", last_matched=now)
    got = evict_over_quota([old_but_alive, expired_unmatched, fresh], 2, now)
    assert ids(got) == ["imc-expired"]


def test_a_never_matched_cache_counts_from_its_creation() -> None:
    now = T0 + 10 * DAY
    never = auto("imc-never", created=now - 3 * DAY)
    matched = auto("imc-matched", created=now - 9 * DAY, last_matched=now - 2 * DAY)
    assert last_activity(never) == now - 3 * DAY
    assert last_activity(matched) == now - 2 * DAY
    assert ids(evict_over_quota([matched, never], 1, now)) == ["imc-never"]


def test_ties_are_broken_by_id_whatever_the_input_order() -> None:
    caches = [auto("imc-c"), auto("imc-a"), auto("imc-b")]
    assert ids(evict_over_quota(caches, 1, T0)) == ["imc-a", "imc-b"]
    assert ids(evict_over_quota(list(reversed(caches)), 1, T0)) == ["imc-a", "imc-b"]


def test_caches_a_user_created_neither_count_nor_get_evicted() -> None:
    users = [cache(f"imc-user-{i}", created=T0 - 100 * DAY) for i in range(5)]
    autos = [auto("imc-auto-old", created=T0 - DAY), auto("imc-auto-new")]
    got = evict_over_quota(users + autos, 1, T0)
    assert ids(got) == ["imc-auto-old"]
    assert ids(eviction_order(users + autos, T0)) == ["imc-auto-old", "imc-auto-new"]


def test_a_quota_of_zero_evicts_every_auto_created_cache() -> None:
    caches = [auto("imc-b"), cache("imc-user"), auto("imc-a")]
    assert ids(evict_over_quota(caches, 0, T0)) == ["imc-a", "imc-b"]


@pytest.mark.parametrize("quota", [-1, 1.5, "3", True, None])
def test_a_quota_that_is_not_a_count_is_a_validation_error(quota: Any) -> None:
    with pytest.raises(ValidationError, match="quota") as caught:
        evict_over_quota([auto("imc-a")], quota, T0)
    assert repr(quota) in str(caught.value)


# --- recording a match ----------------------------------------------------------------------


def test_record_match_returns_a_copy_matched_at_now() -> None:
    c = auto("imc-auto")
    matched = record_match(c, T0 + 6 * DAY)
    assert matched.last_matched == T0 + 6 * DAY
    assert c.last_matched is None  # the original is untouched
    assert (matched.id, matched.images, matched.created) == (c.id, c.images, c.created)


def test_recording_a_match_keeps_an_auto_created_cache_30_more_days() -> None:
    c = auto("imc-auto")
    assert expired([c], T0 + 10 * DAY) == [c]
    matched = record_match(c, T0 + 6 * DAY)
    assert expired([matched], T0 + 10 * DAY) == []
    assert expired([matched], T0 + 36 * DAY) == [matched]


def test_recording_a_match_moves_a_cache_back_in_the_eviction_order() -> None:
    a, b = auto("imc-a"), auto("imc-b")
    assert ids(evict_over_quota([a, b], 1, T0 + DAY)) == ["imc-a"]
    a = record_match(a, T0 + DAY)
    assert ids(evict_over_quota([a, b], 1, T0 + DAY)) == ["imc-b"]


def test_a_match_recorded_out_of_order_does_not_move_last_matched_back() -> None:
    c = auto("imc-auto", last_matched=T0 + 5 * DAY)
    assert record_match(c, T0 + 2 * DAY).last_matched == T0 + 5 * DAY


def test_record_match_reads_an_iso_time() -> None:
    c = record_match(auto("imc-auto"), "2024-03-02T00:00:00Z")
    assert c.last_matched == datetime(2024, 3, 2, tzinfo=timezone.utc)
