"""Reading the cluster's objects: 10k ImageCaches and 100k pods (10k Deployments of 10
replicas), from JSON against ``json.loads`` of the same bytes, and from YAML against
libyaml's own parse (``yaml.load_all`` with ``CSafeLoader``).

The groups ``inputs json`` and ``inputs yaml`` hold the reader and its
parse-only alternative side by side; the ratio is the reader's cost over
parsing alone (targets: 2x for JSON, 1.5x for YAML).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastmatch.inputs import read_caches, read_pods

import workloads

CACHES, WORKLOADS, REPLICAS = 10_000, 10_000, 10


def _crd(i: int, images: list[str], rng: random.Random) -> dict[str, Any]:
    return {
        "apiVersion": "eci.alibabacloud.com/v1",
        "kind": "ImageCache",
        "metadata": {
            "name": f"cache-{i}", "creationTimestamp": "2026-11-01T08:00:00Z",
            "resourceVersion": str(1000 + i), "uid": f"4c2a1e7e-{i:012d}",
            "managedFields": [{"manager": "eci", "operation": "Update",
                               "time": "2026-11-01T08:00:00Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:status": {"f:phase": {}}}}],
        },
        "spec": {"images": rng.sample(images, rng.randint(1, 4)), "imageCacheSize": 40,
                 "retentionDays": 30},
        "status": {"phase": "Ready", "imageCacheId": f"imc-{i:020d}",
                   "expireDateTime": "2026-12-31T08:00:00Z"},
    }


def _deployment(i: int, images: list[str], rng: random.Random) -> dict[str, Any]:
    app = {"app": f"web-{i}"}
    containers = [
        {"name": f"c{j}", "image": image, "imagePullPolicy": "IfNotPresent",
         "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}
        for j, image in enumerate(rng.sample(images, rng.randint(1, 3)))
    ]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"web-{i}", "namespace": f"ns{i % 20}", "labels": app},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": app}, "template": {
            "metadata": {"labels": app,
                         "annotations": {"k8s.aliyun.com/imc-perfect-match": "true"}},
            "spec": {"containers": containers}}},
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, disabled: bool) -> dict[str, Path]:
    rng = random.Random(7)
    images = [f"registry.example.com/team{i % 50}/app{i}:v{i % 7}" for i in range(3000)]
    n_caches = workloads.scaled(CACHES, disabled)
    n_workloads = workloads.scaled(WORKLOADS, disabled)
    caches = [_crd(i, images, rng) for i in range(n_caches)]
    pods = [_deployment(i, images, rng) for i in range(n_workloads)]
    folder = tmp_path_factory.mktemp("inputs")
    out = {name: folder / name for name in
           ("caches.json", "pods.json", "caches.yaml", "pods.yaml")}
    out["caches.json"].write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                              "items": caches}))
    out["pods.json"].write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    out["caches.yaml"].write_text(yaml.safe_dump_all(caches))
    out["pods.yaml"].write_text(yaml.safe_dump_all(pods))
    return out


def _read(caches: Path, pods: Path) -> tuple[int, int]:
    return len(read_caches(caches)), len(read_pods(pods))


@pytest.mark.parametrize("how", ["fastmatch.inputs", "json.loads"])
def test_read_json(benchmark: Any, files: dict[str, Path], disabled: bool, how: str) -> None:
    benchmark.group = "inputs json: 10k ImageCaches + 100k pods (10k Deployments)"
    caches, pods = files["caches.json"], files["pods.json"]
    if how == "json.loads":
        texts = (caches.read_text(), pods.read_text())
        found = benchmark(lambda: [json.loads(text) for text in texts])
        assert len(found[0]["items"]) == workloads.scaled(CACHES, disabled)
    else:
        n_caches, n_pods = benchmark(_read, caches, pods)
        assert n_caches == workloads.scaled(CACHES, disabled)
        assert n_pods == workloads.scaled(WORKLOADS, disabled) * REPLICAS


@pytest.mark.parametrize("how", ["fastmatch.inputs", "yaml CSafeLoader"])
def test_read_yaml(benchmark: Any, files: dict[str, Path], disabled: bool, how: str) -> None:
    benchmark.group = "inputs yaml: 10k ImageCaches + 100k pods (10k Deployments)"
    caches, pods = files["caches.yaml"], files["pods.yaml"]
    if how == "yaml CSafeLoader":
        texts = (caches.read_text(), pods.read_text())
        found = benchmark.pedantic(
            lambda: [list(yaml.load_all(text, Loader=yaml.CSafeLoader)) for text in texts],
            rounds=1 if disabled else 3, iterations=1)
        assert len(found[0]) == workloads.scaled(CACHES, disabled)
    else:
        n_caches, n_pods = benchmark.pedantic(_read, args=(caches, pods),
                                              rounds=1 if disabled else 3, iterations=1)
        assert n_caches == workloads.scaled(CACHES, disabled)
        assert n_pods == workloads.scaled(WORKLOADS, disabled) * REPLICAS
