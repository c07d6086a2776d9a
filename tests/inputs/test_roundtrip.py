"""Caches and pods made as model objects, written as the cluster writes them (ImageCache
CRDs and DescribeImageCaches answers, Pods and Deployments, YAML and JSON, a catalog of
their layers), read back: the same decisions as the objects they came from."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmatch as fm

from strategies import LAYERS, REFS, T0

NOW = T0 + timedelta(days=30)
ANNOTATION = "k8s.aliyun.com/"


def _iso(at: Any) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, fm.Image]:
    """One image per reference (a catalog holds one): layers known for some."""
    world = {}
    for ref in REFS:
        layers = draw(st.lists(st.sampled_from(LAYERS), max_size=4, unique=True))
        world[ref] = fm.Image(ref, layers)
    return world


@st.composite
def model_caches(draw: st.DrawFn, world: dict[str, fm.Image], crd: bool) -> list[fm.ImageCache]:
    found = []
    for i in range(draw(st.integers(0, 8))):
        auto = draw(st.booleans())
        found.append(fm.ImageCache(
            f"imc-{i:02d}",
            [world[r] for r in draw(st.lists(st.sampled_from(REFS), min_size=1, max_size=3,
                                             unique=True))],
            name=f"auto-create-for-p{i}" if auto else f"cache-{i}",
            size_gib=draw(st.sampled_from([20, 30, 50])),
            phase=draw(st.sampled_from(["Ready", "Ready", "Ready", "Creating", "Failed"])),
            created=T0 + timedelta(days=draw(st.integers(0, 29))),
            expires=draw(st.none() | st.integers(20, 60).map(lambda d: T0 + timedelta(days=d))),
            last_matched=None if crd else draw(
                st.none() | st.integers(0, 29).map(lambda d: T0 + timedelta(days=d))),
            auto_created=auto,
            retention_days=draw(st.none() | st.integers(1, 40)) if crd else None,
        ))
    return found


@st.composite
def annotations(draw: st.DrawFn) -> dict[str, str]:
    found: dict[str, str] = {}
    if draw(st.integers(0, 4)) == 0:
        found[ANNOTATION + "eci-auto-imc"] = draw(st.sampled_from(["true", "false", "TRUE"]))
    if draw(st.booleans()):
        found[ANNOTATION + "imc-perfect-match"] = draw(st.sampled_from(["true", "false"]))
    if draw(st.integers(0, 3)) == 0:
        found[ANNOTATION + "imc-match-count-request"] = str(draw(st.integers(1, 4)))
    if draw(st.integers(0, 5)) == 0:
        found[ANNOTATION + "eci-imc-id"] = draw(st.sampled_from(["imc-00", "imc-03", "imc-99"]))
    return found


def _crd(cache: fm.ImageCache) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "fastmatch"} if cache.auto_created else {}
    spec: dict[str, Any] = {"images": [i.ref for i in cache.images],
                            "imageCacheSize": cache.size_gib}
    if cache.retention_days is not None:
        spec["retentionDays"] = cache.retention_days
    status = {"phase": cache.phase.value, "imageCacheId": cache.id}
    if cache.expires is not None:
        status["expireDateTime"] = _iso(cache.expires)
    return {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
            "metadata": {"name": cache.name, "creationTimestamp": _iso(cache.created),
                         "labels": labels},
            "spec": spec, "status": status}


def _describe(cache: fm.ImageCache) -> dict[str, Any]:
    return {"ImageCacheId": cache.id, "ImageCacheName": cache.name,
            "Images": [i.ref for i in cache.images], "Status": cache.phase.value,
            "CreationTime": _iso(cache.created), "ExpireDateTime": _iso(cache.expires),
            "LastMatchedTime": _iso(cache.last_matched), "ImageCacheSize": cache.size_gib,
            "EliminationStrategy": "LRU" if cache.auto_created else ""}


def _workload(name: str, refs: list[str], ann: dict[str, str], replicas: int,
              arch: str | None) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"annotations": ann, "labels": {"app": name}},
        "spec": {"containers": [{"name": f"c{i}", "image": r} for i, r in enumerate(refs)]},
    }
    if arch is not None:
        template["spec"]["nodeSelector"] = {"kubernetes.io/arch": arch}
    if replicas == 0:  # a bare Pod
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "apps", **template["metadata"]},
                "spec": template["spec"]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"replicas": replicas, "template": template}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data(), as_json=st.booleans(), crd=st.booleans())
def test_written_and_read_back_gives_the_same_decisions(
    tmp_path: Path, data: st.DataObject, as_json: bool, crd: bool
) -> None:
    world = data.draw(worlds())
    caches = data.draw(model_caches(world, crd))
    workloads = data.draw(st.lists(st.tuples(
        st.lists(st.sampled_from(REFS), min_size=1, max_size=3, unique=True),
        annotations(), st.integers(0, 3), st.sampled_from([None, "amd64", "x86_64", "arm64"]),
    ), min_size=1, max_size=6))

    # The model side: what the objects mean.
    pods, policies, names = [], [], []
    for w, (refs, ann, replicas, arch) in enumerate(workloads):
        policy = fm.MatchPolicy.from_annotations(ann, arch=arch)
        for r in range(max(replicas, 1)):
            pods.append([world[ref] for ref in refs])
            policies.append(policy)
            names.append(f"w{w}" if replicas == 0 else f"w{w}-{r}")
    expected = fm.CacheIndex(caches).match_many(pods, policies, now=NOW, pod_names=names)

    # The files the cluster would give.
    (tmp_path / "catalog.jsonl").write_text("".join(
        json.dumps({"ref": image.ref, "layers": [{"digest": layer.digest, "size": layer.size}
                                                 for layer in image.layers]}) + "\n"
        for image in world.values() if image.layers))
    objects = [_workload(f"w{w}", *spec) for w, spec in enumerate(workloads)]
    if crd:
        cache_doc: Any = {"apiVersion": "v1", "kind": "List", "items": [_crd(c) for c in caches]}
    else:
        cache_doc = {"RequestId": "r", "TotalCount": len(caches),
                     "ImageCaches": [_describe(c) for c in caches]}
    if as_json:
        (tmp_path / "caches.json").write_text(json.dumps(cache_doc))
        (tmp_path / "pods.json").write_text(json.dumps(objects))
    else:
        (tmp_path / "caches.yaml").write_text(yaml.safe_dump(cache_doc))
        (tmp_path / "pods.yaml").write_text(yaml.safe_dump_all(objects))
    ext = "json" if as_json else "yaml"

    catalog = fm.read_catalog(tmp_path / "catalog.jsonl")
    read_caches = fm.read_caches(tmp_path / f"caches.{ext}", catalog=catalog)
    assert read_caches == caches
    requests = fm.read_pods(tmp_path / f"pods.{ext}", catalog=catalog)
    assert [r.name for r in requests] == names
    got = fm.CacheIndex(read_caches).match_many(
        [r.images for r in requests], [r.policy for r in requests], now=NOW,
        pod_names=[r.name for r in requests])
    assert [r.as_dict() for r in got] == [r.as_dict() for r in expected]
