"""``fastmatch report`` at cluster scale: a synthetic cluster's files, and the report's time
and peak memory from those JSON files to the JSON report.

    python bench/report_scale.py                      # 1M pods, 10k caches
    python bench/report_scale.py --pods 100000 --caches 2000 --dask local

Writes, in a temporary folder (or ``--keep DIR``): ``caches.json`` (a ``List``
of ImageCache objects, as ``kubectl get imagecaches -o json`` gives),
``workloads.json`` (a ``List`` of Deployments, the pods as replicas) and
``catalog.jsonl`` (every image's layers), from :func:`fastmatch.synthetic_cluster`;
then runs ``fastmatch report --format json`` on them as a child process and
prints its wall time and peak RSS (the child's ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastmatch.registry import write_catalog
from fastmatch.synthetic import SyntheticCluster, synthetic_cluster


def _iso(at: Any) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _crd(cache: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"images": [i.ref for i in cache.images],
                            "imageCacheSize": cache.size_gib}
    if cache.retention_days is not None:
        spec["retentionDays"] = cache.retention_days
    return {
        "apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
        "metadata": {"name": cache.name or cache.id, "creationTimestamp": _iso(cache.created)},
        "spec": spec,
        "status": {"phase": cache.phase.value, "imageCacheId": cache.id},
    }


def _deployment(n: int, name: str, images: list[Any], policy: Any,
                replicas: int) -> dict[str, Any]:
    annotations = policy.annotations()
    app = {"app": f"{name}-{n}"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{name}-{n}", "namespace": f"team{n % 40:02d}", "labels": app},
        "spec": {"replicas": replicas, "selector": {"matchLabels": app}, "template": {
            "metadata": {"labels": app, "annotations": annotations},
            "spec": {"containers": [{"name": f"c{j}", "image": image.ref}
                                    for j, image in enumerate(images)]}}},
    }


def write_cluster_files(folder: Path, n_caches: int, n_workloads: int, replicas: int,
                        seed: int = 0) -> tuple[SyntheticCluster, dict[str, Path]]:
    """Write a synthetic cluster of ``n_caches`` caches and ``n_workloads`` Deployments
    of ``replicas`` pods each into ``folder``; return it and its files' paths."""
    cluster = synthetic_cluster(n_caches, n_workloads, seed=seed)
    paths = {name: folder / name for name in ("caches.json", "workloads.json", "catalog.jsonl")}
    paths["caches.json"].write_text(json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [_crd(c) for c in cluster.caches]}))
    paths["workloads.json"].write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        _deployment(n, name, images, policy, replicas)
        for n, (name, images, policy) in enumerate(
            zip(cluster.pod_names, cluster.pods, cluster.policies))]}))
    write_catalog(cluster.images, paths["catalog.jsonl"])
    return cluster, paths


def report_command(paths: dict[str, Path], now: str, out: Path, *extra: str) -> list[str]:
    """The ``fastmatch report`` command line on these files."""
    return [sys.executable, "-m", "fastmatch", "report", "--caches", str(paths["caches.json"]),
            "--pods", str(paths["workloads.json"]), "--catalog", str(paths["catalog.jsonl"]),
            "--now", now, "--format", "json", "-o", str(out), "--quiet", *extra]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1_000_000)
    parser.add_argument("--caches", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, default=50, help="pods per Deployment")
    parser.add_argument("--dask", default=None, help="pass --dask ADDRESS|local on")
    parser.add_argument("--keep", type=Path, default=None, help="write the files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        cluster, paths = write_cluster_files(folder, args.caches, args.pods // args.replicas,
                                             args.replicas)
        made = time.perf_counter() - t0
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in paths.values())
        print(f"files written in {made:.1f} s: {sizes}")
        out = folder / "report.json"
        extra = ["--dask", args.dask] if args.dask else []
        command = report_command(paths, _iso(cluster.now) or "", out, *extra)
        t0 = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        with out.open() as f:
            summary = json.load(f)["summary"]
        print(f"fastmatch report: {summary['pods']:,} pods against {args.caches:,} caches, "
              f"JSON files to JSON report in {wall:.1f} s, peak RSS {peak / 2**30:.2f} GiB "
              f"(report.json {out.stat().st_size / 1e6:.0f} MB)")
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
