"""A cluster read from files and from documents already parsed: the same pods, caches,
warnings and decisions, and the same refusals of bad input."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from fastmatch.cluster_files import cluster_from_documents, decide, read_cluster
from fastmatch.errors import InputFileError
from fastmatch.inputs import Catalog
from fastmatch.inputs.pods import replica_runs
from fastmatch.model import Image

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
D1, D2 = ("sha256:" + c * 64 for c in "ab")


def _cache(name: str, cache_id: str, images: list[str]) -> dict[str, Any]:
    return {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
            "metadata": {"name": name, "creationTimestamp": "2025-12-01T00:00:00Z"},
            "spec": {"images": images}, "status": {"phase": "Ready", "imageCacheId": cache_id}}


def _deployment(name: str, replicas: int, images: list[str],
                annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {"containers": [{"name": f"c{i}", "image": image}
                                        for i, image in enumerate(images)]}}}}


CATALOG = Catalog([Image("nginx:1.25", [(D1, 10)]), Image("redis:7", [(D1, 10), (D2, 5)])])
CACHES = {"kind": "List", "items": [_cache("web", "imc-1", ["nginx:1.25"]),
                                    _cache("kv", "imc-2", ["redis:7"])]}
PODS = [
    {"kind": "List", "items": [_deployment("web", 3, ["nginx:1.25"]),
                               _deployment("kv", 2, ["redis:7", "nginx:1.25"],
                                           {"k8s.aliyun.com/imc-perfect-match": "true"})]},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lone"},
     "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
]


def test_documents_give_what_files_holding_them_give(tmp_path: Path) -> None:
    (tmp_path / "caches.json").write_text(json.dumps(CACHES))
    for i, doc in enumerate(PODS):
        (tmp_path / f"pods{i}.json").write_text(json.dumps(doc))
    from_files = read_cluster([tmp_path / "caches.json"],
                              [tmp_path / "pods0.json", tmp_path / "pods1.json"],
                              catalog=CATALOG, now=NOW)
    from_docs = cluster_from_documents([CACHES], PODS, catalog=CATALOG, now=NOW)
    assert from_docs == from_files
    assert [r.name for r in from_docs.requests] == ["web-0", "web-1", "web-2", "kv-0", "kv-1",
                                                    "lone"]
    decided = decide(from_docs)
    assert [r.as_dict() for r in decided.results] == \
        [r.as_dict() for r in decide(from_files).results]
    assert [r.cache_id for r in decided.results] == ["imc-1"] * 3 + ["imc-2"] * 2 + [None]


def test_replicas_run_together_and_share_their_images_and_policy() -> None:
    requests = cluster_from_documents([CACHES], PODS, catalog=CATALOG, now=NOW).requests
    runs = replica_runs(requests)
    assert [(first.name, count) for first, count in runs] == [("web-0", 3), ("kv-0", 2),
                                                               ("lone", 1)]
    assert all(r.images is requests[0].images and r.policy is requests[0].policy
               for r in requests[:3])


def test_caches_and_pods_listing_one_reference_share_its_image(tmp_path: Path) -> None:
    (tmp_path / "caches.json").write_text(json.dumps(CACHES))
    (tmp_path / "pods.json").write_text(json.dumps(PODS[0]))
    for files in (cluster_from_documents([CACHES], PODS, catalog=CATALOG, now=NOW),
                  read_cluster([tmp_path / "caches.json"], [tmp_path / "pods.json"],
                               catalog=CATALOG, now=NOW)):
        web, kv = files.caches
        assert files.requests[0].images[0] is web.images[0]  # nginx:1.25, looked up once
        assert files.requests[3].images == (kv.images[0], web.images[0])


def test_bad_documents_are_named_by_document_and_field() -> None:
    bad = _deployment("web", 1, ["Nginx"])
    with pytest.raises(InputFileError, match=r"^pods: document 2: items\[0\] \(Deployment "
                       r"shop/web\): spec\.template\.spec\.containers\[0\]\.image: "):
        cluster_from_documents([CACHES], [PODS[1], {"kind": "List", "items": [bad]}], now=NOW)
    twice = {"kind": "List", "items": [_cache("a", "imc-1", ["nginx"])]}
    with pytest.raises(InputFileError, match=r"^caches: document 2: items\[0\] .*image cache "
                       r"imc-1 is listed already, at caches: document 1: items\[0\]"):
        cluster_from_documents([CACHES, twice], PODS, now=NOW)
    with pytest.raises(InputFileError, match=r"^pods: expected a list of documents"):
        cluster_from_documents([CACHES], PODS[1], now=NOW)
