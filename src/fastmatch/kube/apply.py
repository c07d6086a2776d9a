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
    and upsert ``upserts`` (the last of an id named twice), as one write.

    Every index write of :mod:`fastmatch.kube` goes through here, and it is one
    :meth:`CacheIndex.apply`: a match beside it sees the whole batch or none of it.
    The sync is the index's only writer, so the ids it holds cannot change between
    the filter here and the write.
    """
    last: dict[str, ImageCache] = {}
    for cache in upserts:
        last[cache.id] = cache
    gone = [cache_id for cache_id in dict.fromkeys(removes)
            if cache_id not in last and cache_id in index]
    if last or gone:
        index.apply(last.values(), gone)
