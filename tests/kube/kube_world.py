"""What the cluster tests share: ImageCache objects as a cluster holds them, and a bounded
wait for the sync to catch up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from apiserver import FakeApiServer

from fastmatch.kube import ClusterIndex, SyncOptions


def cache(name: str, *images: str, phase: str = "Ready", cache_id: str | None = None,
          uid: str | None = None, rv: str | None = None) -> dict[str, Any]:
    """An ``ImageCache`` object (``eci.alibabacloud.com/v1``) named ``name`` listing
    ``images`` (default ``nginx:1.25``) in ``phase``; ``cache_id`` as ECI's
    ``status.imageCacheId``; ``uid`` and ``rv`` as the API server's metadata."""
    status: dict[str, Any] = {"phase": phase}
    if cache_id:
        status["imageCacheId"] = cache_id
    meta: dict[str, Any] = {"name": name, "creationTimestamp": "2026-11-01T00:00:00Z"}
    if uid:
        meta["uid"] = uid
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache", "metadata": meta,
            "spec": {"images": list(images) or ["nginx:1.25"]}, "status": status}


def wait(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Whether ``predicate()`` comes true within ``timeout`` seconds (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def started_index(server: FakeApiServer, options: SyncOptions) -> Iterator[ClusterIndex]:
    """Three caches on the started ``server`` (``c0``..``c2``), and a ready ClusterIndex
    (ImageCaches only) following it, with its watch open; stopped after the yield."""
    for i in range(3):
        server.create("imagecaches", cache(f"c{i}", f"app{i}:1"))
    ci = ClusterIndex(server.api_client(), profile=False, options=options)
    ci.start()
    try:
        assert ci.wait_ready(5)
        assert server.wait_watchers(1)
        yield ci
    finally:
        ci.stop()
