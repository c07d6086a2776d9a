"""``now`` in every spelling a user may pass decides alike (expiry is to the microsecond)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import fastmatch as fm

EXPIRES = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc)
NGINX = fm.Image("nginx:1.25", [fm.Layer("sha256:" + "a" * 64, 100)])
PLUS_2 = timezone(timedelta(hours=2))


def spellings(at: datetime) -> list[object]:
    return [
        at,
        at.astimezone(PLUS_2),
        at.replace(tzinfo=None),  # naive means UTC
        at.timestamp(),
        at.isoformat(),
        at.isoformat().replace("+00:00", "Z"),
    ]


@pytest.mark.parametrize("micros, hit", [(-1, True), (0, False), (1, False)])
def test_every_spelling_of_now_agrees(micros, hit):
    index = fm.CacheIndex(
        [fm.ImageCache("imc-1", [NGINX], created=EXPIRES - timedelta(days=1), expires=EXPIRES)]
    )
    at = EXPIRES + timedelta(microseconds=micros)
    for now in spellings(at):
        for _ in range(2):  # the same object twice: the second read may be remembered
            assert index.match([NGINX], now=now).hit is hit, now
        assert [r.hit for r in index.match_many([[NGINX]], now=now)] == [hit], now


def test_now_defaults_to_the_current_time():
    index = fm.CacheIndex(
        [
            fm.ImageCache(
                "imc-1",
                [NGINX],
                created=EXPIRES,
                expires=datetime.now(timezone.utc) + timedelta(hours=1),
            )
        ]
    )
    assert index.match([NGINX]).hit
    assert index.match_many([[NGINX]])[0].hit
    gone = fm.CacheIndex(
        [fm.ImageCache("imc-1", [NGINX], created=EXPIRES, expires=datetime.now(timezone.utc))]
    )
    assert not gone.match([NGINX]).hit
