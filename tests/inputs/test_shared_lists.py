"""Caches read from files that list the same references share one images tuple (and what a
cache derives from it), and read, index and fail exactly as each would alone."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.inputs import ImageReader, cache_from_object
from fastmatch.inputs.caches import caches_from
from fastmatch.inputs.documents import objects_in
from fastmatch.timeutil import to_datetime

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
A, B, C = ("sha256:" + x * 64 for x in "abc")
CATALOG = fm.Catalog([
    fm.Image("registry.example.com/web:v1", [fm.Layer(A, 1000), fm.Layer(B, 10)]),
    fm.Image("registry.example.com/api:v1", [fm.Layer(A, 1000), fm.Layer(C, 500)]),
    fm.Image("registry.example.com/api:v2", [fm.Layer(C, 500)]),
])
WEB, API = "registry.example.com/web:v1", "registry.example.com/api:v1"


def _obj(name: str, images: Any, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
        "metadata": {"name": name, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {"images": images},
        "status": {"phase": "Ready", "imageCacheId": f"imc-{name}"},
    }
    for path, value in fields.items():  # "spec.imageCacheSize" -> obj["spec"]["imageCacheSize"]
        part, key = path.split(".")
        obj[part][key] = value
    return obj


def _read(tmp_path: Path, objs: list[dict[str, Any]]) -> list[fm.ImageCache]:
    path = tmp_path / "caches.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    return fm.read_caches([path], catalog=CATALOG, now=NOW)


def _alone(obj: dict[str, Any]) -> fm.ImageCache:
    return cache_from_object(obj, layers=CATALOG, now=NOW)


def test_caches_listing_the_same_references_share_them_and_read_as_alone(tmp_path):
    objs = [_obj("a", [WEB, API]), _obj("b", [WEB, API], **{"spec.retentionDays": 3}),
            _obj("c", [WEB]), _obj("d", [WEB, API], **{"status.phase": "Creating"})]
    read = _read(tmp_path, objs)
    assert read[0].images is read[1].images is read[3].images
    assert read[2].images is not read[0].images
    for cache, obj in zip(read, objs):
        alone = _alone(obj)
        assert cache == alone
        assert dict(cache.layer_sizes()) == dict(alone.layer_sizes())
        assert cache.bytes == alone.bytes and cache.by_reference == alone.by_reference
    assert read[0].bytes == 1510  # layer A, in both images, counted once


def test_one_of_the_caches_sharing_a_list_updated_changes_it_alone(tmp_path):
    read = _read(tmp_path, [_obj("a", [API]), _obj("b", [API]), _obj("c", [API])])
    index = fm.CacheIndex(read)
    moved = _alone(_obj("b", ["registry.example.com/api:v2"]))
    index.upsert(moved)
    index.verify()
    api, v2 = CATALOG.get(API), CATALOG.get("registry.example.com/api:v2")
    assert api is not None and v2 is not None
    assert index["imc-a"].images == index["imc-c"].images == (api,)
    assert index["imc-b"].images == (v2,) and index["imc-b"].bytes == 500
    assert index.match([api], now=NOW).cache_id == "imc-a"  # b no longer holds layer A
    only_b = fm.CacheIndex([moved, read[0].replace(phase="Failed")])
    assert only_b.match([v2], now=NOW).cache_id == "imc-b"
    index.remove("imc-a")
    index.remove("imc-c")
    assert index.match([api], now=NOW).outcome == "none"  # b holds only part of it now
    assert index.match([v2], now=NOW).cache_id == "imc-b"


@pytest.mark.parametrize(("field", "value"), [
    ("spec.imageCacheSize", "big"),
    ("spec.imageCacheSize", 10),
    ("spec.imageCacheSize", True),
    ("spec.retentionDays", 0),
    ("metadata.creationTimestamp", "yesterday"),
    ("metadata.creationTimestamp", "2026-11-01T00:00:6xZ"),  # Kubernetes' shape, not a time
    ("metadata.labels", "x"),
    ("status.phase", "Bogus"),
    ("status.phase", ["Ready"]),
    ("status.imageCacheId", 7),
    ("status.expireDateTime", 5),
    ("metadata.name", ""),
])
def test_a_bad_cache_after_good_ones_sharing_its_list_names_the_field(tmp_path, field, value):
    bad = _obj("bad", [WEB, API], **{field: value})
    with pytest.raises(fm.InputFileError) as alone:
        _alone(bad)
    with pytest.raises(fm.InputFileError) as read:
        _read(tmp_path, [_obj("a", [WEB, API]), _obj("b", [WEB, API]), bad])
    what, words = str(alone.value).split(": ", 1)  # "ImageCache bad", the field and problem
    assert words.startswith(f"{field}: ")
    assert str(read.value) == f"{tmp_path / 'caches.json'}: document 1: items[2] ({what}): {words}"


def test_a_layer_with_two_sizes_across_images_is_named(tmp_path):
    other = fm.Catalog([fm.Image("registry.example.com/web:v1", [fm.Layer(A, 1000)]),
                        fm.Image("registry.example.com/api:v1", [fm.Layer(A, 999)])])
    with pytest.raises(fm.InputFileError, match=f"layer {A} is listed with sizes 1000 and 999"):
        cache_from_object(_obj("a", [WEB, API]), layers=other)
    with pytest.raises(fm.ValidationError, match=f"imc-1: layer {A} is listed with sizes"):
        fm.ImageCache("imc-1", [other.get(WEB), other.get(API)])  # type: ignore[list-item]


@pytest.mark.parametrize("text", ["2025-10-18T20:51:23Z", "2025-10-18T20:51:23z",
                                  "2025-10-18T20:51:23+02:00", " 2025-10-18T20:51:23Z",
                                  "2025-10-18T20:51:23.5Z", "2025-10-18 20:51:23Z"])
def test_creation_times_read_as_the_time_parser_reads_them(text):
    cache = _alone(_obj("a", [WEB], **{"metadata.creationTimestamp": text}))
    assert cache.created == to_datetime(text) and cache.created.tzinfo is not None


# -- the bulk build of the index, from caches sharing image tuples ------------------

REFS = [WEB, API, "registry.example.com/api:v2", "nginx:1.25", "busybox"]
lists = st.lists(st.sampled_from(REFS), min_size=1, max_size=3, unique=True)


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    shared = draw(st.lists(lists, min_size=1, max_size=3))
    objs = []
    for i in range(draw(st.integers(1, 12))):
        fields: dict[str, Any] = {
            "status.phase": draw(st.sampled_from(["Ready"] * 4 + ["Creating", "Failed"])),
            "metadata.creationTimestamp": f"2026-11-{draw(st.integers(1, 28)):02d}T00:00:00Z",
        }
        if draw(st.booleans()):
            fields["spec.retentionDays"] = draw(st.integers(1, 60))
        if draw(st.integers(0, 3)) == 0:
            fields["status.expireDateTime"] = "2026-12-15T00:00:00Z"
        name = f"auto-create-for-x{i}" if draw(st.integers(0, 3)) == 0 else f"c{i}"
        cache_id = f"imc-{draw(st.integers(0, 8))}"  # ids repeat: a later one replaces
        obj = _obj(name, list(draw(st.sampled_from(shared))), **fields)
        obj["status"]["imageCacheId"] = cache_id
        objs.append(obj)
    return objs


@settings(max_examples=60, deadline=None)
@given(documents(), st.lists(st.lists(st.sampled_from(REFS), min_size=1, max_size=3),
                             min_size=1, max_size=4))
def test_an_index_built_from_shared_lists_equals_one_upserted_one_by_one(objs, pods):
    read = [_alone(obj) for obj in objs]
    latest = {c.id: c for c in read}  # read_caches refuses repeated ids: the index takes them
    found = objects_in({"kind": "List", "items": objs}, "caches")
    shared = [c for c, _ in caches_from(found, ImageReader(CATALOG), NOW)]
    built = fm.CacheIndex(shared)
    upserted = fm.CacheIndex()
    for cache in read:
        upserted.upsert(cache)
    built.verify()
    assert sorted((c.id, c) for c in built) == sorted(latest.items())
    assert built.ready == upserted.ready
    assert built.expired(NOW) == upserted.expired(NOW)
    images = [[CATALOG.get(r) or r for r in pod] for pod in pods]
    for at in (NOW, datetime(2026, 12, 20, tzinfo=timezone.utc)):
        assert built.match_many(images, now=at) == upserted.match_many(images, now=at)
