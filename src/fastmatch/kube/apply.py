"""The one door through which the sync writes to the index."""

from __future__ import annotations

from collections.abc import Iterable

from fastmatch.index import CacheIndex
from fastmatch.model import ImageCache

__all__ = ["apply_batch"]


def apply_batch(
    index: CacheIndex, upserts: Iterable[ImageCache] = (), removes: Iterable[str] = ()
) -> None:
    """Write one batch: remove the caches with the ids in ``removes`` (those it holds),
    then upsert ``upserts``.  The sync never names one id in both.

    Every index write of :mod:`fastmatch.kube` goes through here, so that the batch
    becomes one atomic write of the index (readers see all of it or none) in one place
    when the index offers one; today each cache is written on its own, and a reader may
    see part of a batch (each cache whole, before or after).
    """
    for cache_id in removes:
        index.discard(cache_id)
    for cache in upserts:
        index.upsert(cache)
