"""ImageSets: a long-lived reader of ImageCaches reads each image list once, and reads the
same as without it (the caches, and bad input's messages)."""

from __future__ import annotations

from typing import Any

import pytest

import fastmatch as fm
from fastmatch.inputs import ImageReader, cache_from_object
from fastmatch.inputs.caches import ImageSets

NOW = "2026-12-01T00:00:00Z"
LAYER = fm.Layer("sha256:" + "a" * 64, 1000)
CATALOG = fm.Catalog([fm.Image("registry.example.com/web:v1", [LAYER]),
                      fm.Image("registry.example.com/api:v1",
                               [LAYER, fm.Layer("sha256:" + "b" * 64, 500)])])


def _obj(name: str, images: Any, phase: str = "Ready") -> dict[str, Any]:
    return {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
            "metadata": {"name": name, "creationTimestamp": NOW},
            "spec": {"images": images},
            "status": {"phase": phase, "imageCacheId": f"imc-{name}"}}


REFS = ["registry.example.com/web:v1", "registry.example.com/api:v1", "nginx"]


def test_caches_read_through_sets_equal_those_read_without() -> None:
    sets = ImageSets(ImageReader(CATALOG))
    for name, phase in (("a", "Ready"), ("b", "Creating"), ("a", "Failed")):
        plain = cache_from_object(_obj(name, list(REFS), phase), layers=CATALOG)
        remembered = cache_from_object(_obj(name, list(REFS), phase), sets=sets)
        assert remembered == plain
        assert dict(remembered.layer_sizes()) == dict(plain.layer_sizes())
        assert remembered.bytes == plain.bytes == 1500
        assert remembered.by_reference == plain.by_reference == {"docker.io/library/nginx:latest"}


def test_a_list_read_again_shares_its_images() -> None:
    sets = ImageSets(ImageReader(CATALOG))
    first = cache_from_object(_obj("a", list(REFS)), sets=sets)
    second = cache_from_object(_obj("b", list(REFS)), sets=sets)
    assert second.images is first.images
    assert second.id == "imc-b" and first.id == "imc-a"


def test_an_index_matches_caches_read_through_sets() -> None:
    sets = ImageSets(ImageReader(CATALOG))
    caches = [cache_from_object(_obj(n, ["registry.example.com/web:v1"]), sets=sets)
              for n in ("a", "b")]
    index = fm.CacheIndex()
    index.apply(caches)
    result = index.match([CATALOG.image("registry.example.com/web:v1")], now=NOW)
    assert result.cache is not None and result.cache.id == "imc-a"


@pytest.mark.parametrize(("images", "message"), [
    (["registry.example.com/web:v1", 7], r"spec.images\[1\]: expected an image reference"),
    ([], "spec.images: holds 0 images"),
    ([["nested"]], r"spec.images\[0\]: expected an image reference"),
    ("nginx", "spec.images: missing or not a list"),
])
def test_bad_input_is_reported_as_without_sets(images: Any, message: str) -> None:
    sets = ImageSets(ImageReader(CATALOG))
    cache_from_object(_obj("good", list(REFS)), sets=sets)
    for _ in range(2):  # and again, once the reader has seen it
        with pytest.raises(fm.InputFileError, match=r"^ImageCache bad: " + message):
            cache_from_object(_obj("bad", images), sets=sets)


def test_a_full_memory_forgets_and_still_reads() -> None:
    sets = ImageSets(ImageReader(CATALOG), limit=2)
    for k in range(5):
        cache = cache_from_object(_obj(f"c{k}", [f"app{k}:v1"]), sets=sets)
        assert [image.ref for image in cache.images] == [f"docker.io/library/app{k}:v1"]
    assert len(sets.sets) <= 2
