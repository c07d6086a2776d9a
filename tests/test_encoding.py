"""The caches' columns for the index's bulk build, read in C, read as the Python path reads
them: the same keys and images objects, bytes, times, sizes and platforms, for plain caches
and odd but valid ones (other time zones, dates at the ends of what a datetime holds, caches
listing many images or images by reference), and the same error where the Python path
refuses one; and an index built from them is the index upserting them makes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.encoding import _python_columns, cache_columns
from fastmatch.model import _CACHE_FIELDS, trusted_cache

from strategies import LAYERS, caches, images

ZONES = [timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
# Times anywhere a datetime reaches, near its ends most of all (where expiries overflow).
EDGES = [datetime(1, 1, 1), datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(2026, 6, 1),
         datetime(9999, 12, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]
odd_times = st.builds(lambda base, zone: base.replace(tzinfo=zone),
                      st.sampled_from(EDGES) | st.datetimes(), st.sampled_from(ZONES))


@st.composite
def odd_caches(draw: st.DrawFn) -> fm.ImageCache:
    """Caches whose every field may be at an edge: the C path must agree or step aside."""
    return fm.ImageCache(
        f"imc-{draw(st.integers(0, 30)):02d}",
        draw(st.lists(images(), min_size=1, max_size=20)),
        phase=draw(st.sampled_from(["Ready", "Failed", "Creating"])),
        created=draw(odd_times),
        expires=draw(st.none() | odd_times),
        last_matched=draw(st.none() | odd_times),
        auto_created=draw(st.booleans()),
        retention_days=draw(st.none() | st.integers(1, 40) | st.integers(1, 4_000_000)
                            | st.integers(4_000_000, 10**10)),
        arch=draw(st.sampled_from([None, "amd64"])),
    )


def _columns_or_error(read: object, caches_: list[fm.ImageCache]) -> object:
    try:
        return read(caches_)  # type: ignore[operator]
    except (OverflowError, ValueError, TypeError) as exc:
        return type(exc), str(exc)


def _assert_same(caches_: list[fm.ImageCache]) -> None:
    fast = _columns_or_error(cache_columns, caches_)
    careful = _columns_or_error(_python_columns, caches_)
    assert fast == careful


@given(st.lists(caches(), max_size=12))
def test_plain_caches_encode_as_the_python_path_encodes_them(caches_):
    _assert_same(caches_)


@given(st.lists(odd_caches(), max_size=6))
def test_odd_caches_encode_or_fail_as_the_python_path_does(caches_):
    _assert_same(caches_)


def test_an_expiry_past_year_9999_fails_as_it_did():
    late = fm.ImageCache("imc-1", ["nginx"], created=datetime(9999, 12, 30, tzinfo=timezone.utc),
                         retention_days=7)
    with pytest.raises(OverflowError) as fast:
        cache_columns([late])
    with pytest.raises(OverflowError) as careful:
        _python_columns([late])
    assert str(fast.value) == str(careful.value)


def test_caches_of_a_subclass_are_read_through_the_model():
    class Renamed(fm.ImageCache):
        __slots__ = ()

        @property
        def bytes(self) -> int:  # type: ignore[override]
            return 7

    cache = Renamed("imc-1", [fm.Image("app:1", [LAYERS[5]])])
    assert cache_columns([cache])[2] == [7] == _python_columns([cache])[2]


def test_caches_sharing_an_images_tuple_share_its_encoding():
    image = fm.Image("app:1", [LAYERS[4], LAYERS[5]])
    first = fm.ImageCache("imc-1", [image, "nginx"])
    # As the readers make caches listing one image set: the very same images tuple.
    second = trusted_cache({**{f: getattr(first, f) for f in _CACHE_FIELDS}, "id": "imc-2"})
    assert second.images is first.images
    keys, sizes = cache_columns([first, second])[:2]
    assert keys[0] is keys[1] and sizes[0] is sizes[1]
    assert keys[0] == (*image.pseudo_keys, *fm.Image("nginx").pseudo_keys)
    assert sizes[0][0] is image.layer_sizes()


@given(st.lists(caches() | odd_caches(), max_size=10))
def test_an_index_built_in_bulk_is_the_index_upserts_make(caches_):
    caches_ = list({c.id: c for c in caches_}.values())  # (a replaced cache is never encoded)
    try:
        built = fm.CacheIndex(caches_)
    except OverflowError:
        return  # an expiry a datetime cannot hold: refused either way (above)
    upserted = fm.CacheIndex()
    for cache in caches_:
        upserted.upsert(cache)
    built.verify()
    assert sorted((c.id, c) for c in built) == sorted((c.id, c) for c in upserted)
    probes = [[image] for cache in caches_ for image in cache.images][:8]
    assert built.match_many(probes) == upserted.match_many(probes)
