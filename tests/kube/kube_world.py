"""What the cluster tests share: ImageCache objects as a cluster holds them, and a bounded
wait for the sync to catch up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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
