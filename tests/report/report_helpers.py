"""Small clusters built by hand for the report's tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import fastmatch as fm
from fastmatch.inputs import PodRequest
from fastmatch.report import build_report

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOW = "2026-12-01T00:00:00Z"
CACHES = [str(EXAMPLES / "imagecaches.json"), str(EXAMPLES / "describe-image-caches.json")]
PODS = [str(EXAMPLES / name) for name in ("deployment.yaml", "workloads.yaml", "pods.yaml")]
CONTEXT = [
    "--catalog", str(EXAMPLES / "catalog.jsonl"),
    "--profile", str(EXAMPLES / "eci-profile.yaml"),
    "--namespaces", str(EXAMPLES / "namespaces.yaml"),
    "--now", NOW,
]
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
MB = 1_000_000


def layer(n: int, mb: int) -> fm.Layer:
    return fm.Layer(f"sha256:{n:064x}", mb * MB)


def image(name: str, *layers: fm.Layer) -> fm.Image:
    return fm.Image(f"example.com/{name}:1", layers)


def cache(cache_id: str, *images: fm.Image, days_old: float = 1, **fields) -> fm.ImageCache:
    return fm.ImageCache(cache_id, images, created=T0 - timedelta(days=days_old), **fields)


def pods(name: str, images, replicas: int = 1, annotations=None, namespace="default"):
    """A workload's replicas: one request each, sharing images and policy."""
    first = PodRequest(images, annotations, name=f"{name}-0", namespace=namespace,
                       workload=f"Deployment {name}")
    return [first, *(first.renamed(f"{name}-{i}") for i in range(1, replicas))]


def report_of(caches, requests, now=T0, **options):
    index = fm.CacheIndex(caches)
    results = index.match_many([r.images for r in requests], [r.policy for r in requests],
                               now=now, pod_names=[r.name for r in requests])
    return build_report(index, requests, results, now, **options)


def synthetic_requests(cluster, replicas: int = 3):
    """The pods of a synthetic cluster as requests, each pod a workload of ``replicas``
    (sharing images and policy, as read_pods makes them)."""
    out = []
    for name, images, policy in zip(cluster.pod_names, cluster.pods, cluster.policies):
        out += pods(name, images, replicas, policy.annotations())
    return out
