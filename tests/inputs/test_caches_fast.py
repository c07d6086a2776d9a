"""A cluster's ImageCache objects, read in C when plain, read as the careful reader reads
them one by one: the same caches (every field, their layers in order, their bytes, what
they list by reference), in input order, with other kinds and DescribeImageCaches answers
among them; and every object the fast path hands back still read, or refused, word for
word as the careful reader does."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.errors import InputFileError
from fastmatch.inputs import ImageReader, cache_from_describe, cache_from_object
from fastmatch.inputs.caches import caches_from
from fastmatch.inputs.documents import objects_in

NOW = "2026-12-01T00:00:00Z"
D = ["sha256:" + c * 64 for c in "abcdef"]
CATALOG = fm.Catalog([
    fm.Image("registry.example.com/web:v1", [fm.Layer(D[0], 1000), fm.Layer(D[1], 10)]),
    fm.Image("registry.example.com/api:v1", [fm.Layer(D[0], 1000), fm.Layer(D[2], 500)]),
    fm.Image("registry.example.com/job:v1", [fm.Layer(D[3], 7)]),
    # Two sizes for one layer, across images: a cache listing both is bad input.
    fm.Image("registry.example.com/odd:v1", [fm.Layer(D[0], 999)]),
])
REFS = ["registry.example.com/web:v1", "registry.example.com/api:v1",
        "registry.example.com/job:v1", "nginx", "docker.io/library/redis:7",
        "registry.example.com/web@sha256:" + "9" * 64]


def _obj(name: str, images: Any, **fields: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Ready", "imageCacheId": f"imc-{name}"}
    obj: dict[str, Any] = {
        "apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
        "metadata": {"name": name, "creationTimestamp": "2026-11-20T08:00:00Z"},
        "spec": {"images": images, "imageCacheSize": 40}, "status": status}
    for path, value in fields.items():
        part, key = path.split(".")
        if value is _DROP:
            obj[part].pop(key, None)
        else:
            obj[part][key] = value
    return obj


_DROP = object()


def _fast(objs: list[object]) -> list[fm.ImageCache] | str:
    """The caches read as files are (runs in C), or the error's message."""
    try:
        found = caches_from(objects_in({"kind": "List", "items": objs}, "caches.json"),
                            ImageReader(CATALOG), NOW)
    except InputFileError as exc:
        return str(exc)
    return [cache for cache, _ in found]


def _careful(objs: list[object]) -> list[fm.ImageCache] | str:
    """The caches read one object at a time by the careful reader, or the first error."""
    caches = []
    for located in objects_in({"kind": "List", "items": objs}, "caches.json"):
        obj = located.obj
        assert isinstance(obj, dict)
        if obj.get("kind") != "ImageCache":
            if "kind" not in obj and "ImageCaches" in obj:
                caches.extend(cache_from_describe(item, layers=CATALOG, now=NOW)
                              for item in obj["ImageCaches"])
            continue
        try:
            caches.append(cache_from_object(obj, layers=CATALOG, now=NOW, where=located.where))
        except InputFileError as exc:
            return str(exc)
    return caches


def _same(fast: list[fm.ImageCache] | str, careful: list[fm.ImageCache] | str) -> None:
    assert type(fast) is type(careful), (fast, careful)
    if isinstance(fast, str):
        assert fast == careful
        return
    assert isinstance(careful, list)
    assert fast == careful
    for one, other in zip(fast, careful):
        assert list(one.layer_sizes().items()) == list(other.layer_sizes().items())
        assert type(one.layer_sizes()) is type(other.layer_sizes())
        assert (one.bytes, one.by_reference, one.expires_at) == \
            (other.bytes, other.by_reference, other.expires_at)
        assert type(one.size_gib) is int and type(one.auto_created) is bool


def test_a_cluster_of_plain_caches_reads_as_the_careful_reader_reads_it() -> None:
    objs = [_obj(f"c{i}", [REFS[i % 3], REFS[(i + 1) % 6]]) for i in range(12)]
    objs[3]["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "fastmatch"}
    objs[4]["metadata"]["name"] = "auto-create-for-web"
    objs[5]["status"]["expireDateTime"] = "2026-12-24T00:00:00Z"
    objs[6]["spec"]["retentionDays"] = 3
    objs[7]["status"] = {}  # new: no id (named by its name), Preparing
    fast = _fast(objs)
    _same(fast, _careful(objs))
    assert isinstance(fast, list)
    assert [c.id for c in fast][:8] == [f"imc-c{i}" for i in range(7)] + ["c7"]
    assert [c.auto_created for c in fast][:5] == [False, False, False, True, True]
    assert fast[7].phase is fm.Phase.PREPARING and fast[6].retention_days == 3
    assert fast[0].bytes == 1000 + 10 + 500 and fast[0].layer_sizes()[D[2]] == 500


# Values a file may hold that the fast path hands back, read or refused as the careful
# reader does: odd but valid, and bad.
ODD = [
    ("spec.imageCacheSize", "60"), ("spec.imageCacheSize", _DROP), ("spec.imageCacheSize", 19),
    ("spec.imageCacheSize", True), ("spec.imageCacheSize", 2**70), ("spec.retentionDays", 0),
    ("spec.retentionDays", "7"), ("spec.retentionDays", None), ("status.phase", "ready"),
    ("status.phase", "Gone"), ("status.phase", ""), ("status.phase", 3), ("status.phase", _DROP),
    ("status.imageCacheId", ""), ("status.imageCacheId", " imc-x"), ("status.imageCacheId", 5),
    ("status.imageCacheId", "imc-x\u00a0"), ("status.expireDateTime", "2026-12-24"),
    ("status.expireDateTime", "2026-13-24T00:00:00Z"), ("status.expireDateTime", ""),
    ("status.expireDateTime", 1), ("metadata.creationTimestamp", _DROP),
    ("metadata.creationTimestamp", "2026-11-20T08:00:00.5Z"),
    ("metadata.creationTimestamp", "2026-11-20T08:00:00+08:00"),
    ("metadata.creationTimestamp", "2026-02-30T08:00:00Z"), ("metadata.labels", ["a"]),
    ("metadata.labels", None), ("metadata.name", ""), ("metadata.name", 7),
    ("spec.images", []), ("spec.images", "nginx"), ("spec.images", ["nginx", 3]),
    ("spec.images", ["nginx", ["x"]]), ("spec.images", ["nginx", " "]),
    ("spec.images", ["Nginx:1"]), ("spec.images", ["nginx"] * 21),
    ("spec.images", [REFS[0], "registry.example.com/odd:v1"]),
]


@pytest.mark.parametrize(("path", "value"), ODD)
def test_an_object_the_fast_path_hands_back_reads_as_the_careful_reader_reads_it(
    path: str, value: object
) -> None:
    objs = [_obj("a", [REFS[0]]), _obj("b", [REFS[1], REFS[3]], **{path: value}),
            _obj("c", [REFS[0]])]
    _same(_fast(objs), _careful(objs))


def test_a_bad_cache_among_plain_ones_is_named_with_its_place_and_field() -> None:
    objs = [_obj("a", [REFS[0]]), _obj("b", [REFS[0]], **{"spec.imageCacheSize": 19})]
    assert _fast(objs) == ("caches.json: items[1] (ImageCache b): spec.imageCacheSize: 19 "
                           "is outside 20..32768")


def test_other_kinds_and_describe_answers_among_plain_caches_keep_their_order() -> None:
    describe = {"ImageCaches": [{"ImageCacheId": "imc-d", "Images": [REFS[2]],
                                 "CreationTime": NOW, "Status": "Ready"}]}
    objs: list[object] = [
        _obj("a", [REFS[0]]), {"kind": "ConfigMap", "metadata": {"name": "x"}},
        {"kind": None}, {"kind": 3}, describe, _obj("b", [REFS[1]]), {"apiVersion": "v1"}]
    fast = _fast(objs)
    _same(fast, _careful(objs))
    assert isinstance(fast, list) and [c.id for c in fast] == ["imc-a", "imc-d", "imc-b"]


def test_caches_listing_one_list_share_its_images_and_what_they_derive() -> None:
    objs = [_obj(n, [REFS[0], REFS[1]]) for n in "abc"]
    fast = _fast(objs)
    assert isinstance(fast, list)
    assert fast[1].images is fast[0].images and fast[2].images is fast[0].images
    assert fast[2].by_reference is fast[0].by_reference
    _same(fast, _careful(objs))
    assert fast[0].layer_sizes() is fast[0].layer_sizes()  # made once, when first asked


def test_the_documents_are_left_as_they_were() -> None:
    objs = [_obj("a", [REFS[0], REFS[3]]), _obj("b", [REFS[1]], **{"status.phase": "ready"})]
    before = copy.deepcopy(objs)
    _fast(objs)
    assert objs == before


_times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1))
_fields = st.fixed_dictionaries({}, optional={
    "spec.imageCacheSize": st.one_of(st.integers(0, 40_000), st.sampled_from(["40", None])),
    "spec.retentionDays": st.one_of(st.integers(-1, 10**6 + 1), st.none()),
    "status.phase": st.sampled_from(["Ready", "Creating", "Preparing", "Failed", "Updating",
                                     "ready", "", None, _DROP]),
    "status.imageCacheId": st.sampled_from(["imc-1", "", None, _DROP, " x", "x\t"]),
    "status.expireDateTime": st.one_of(_times.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")),
                                       st.none(), st.just("soon")),
    "metadata.creationTimestamp": st.one_of(
        _times.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")), st.just(_DROP)),
    "metadata.labels": st.sampled_from([None, {}, {"app.kubernetes.io/managed-by": "fastmatch"},
                                        {"app.kubernetes.io/managed-by": 1}]),
    "metadata.name": st.sampled_from(["web", "auto-create-for-x", "auto-create-fo"]),
})


@given(st.lists(st.tuples(st.lists(st.sampled_from([*REFS, "registry.example.com/odd:v1"]),
                                   min_size=1, max_size=4), _fields), max_size=6))
def test_any_list_of_caches_reads_as_the_careful_reader_reads_it(
    made: list[tuple[list[str], dict[str, Any]]]
) -> None:
    objs = [_obj(f"c{i}", refs, **fields) for i, (refs, fields) in enumerate(made)]
    for i, obj in enumerate(objs):  # distinct ids, unless the object has none
        if obj["status"].get("imageCacheId") == "imc-1":
            obj["status"]["imageCacheId"] = f"imc-{i}"
    _same(_fast(objs), _careful(objs))
