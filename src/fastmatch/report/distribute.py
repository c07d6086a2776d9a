"""Deciding a cluster's pods in parts: on this machine with a progress bar, or on Dask.

One ``match_many`` call over all pods proposes one cache per image set,
named after the first pod of that set (SPEC §3.7); that is the only thing one
pod's decision takes from another's.  So the pods are split by image set
(every pod of one set in the same part, in input order) and each part is
decided by its own ``match_many`` call: the results are exactly those of one
call over all pods, whatever the number of parts, the order they finish in,
or the machine each runs on.

On Dask (``distributed``), the index travels to the workers once, as its
snapshot bytes scattered to every worker (``broadcast``), not once per task;
each worker loads it once and keeps it for the following tasks.
"""

from __future__ import annotations

import importlib
import io
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fastmatch.decision import ImageSets
from fastmatch.errors import FastmatchError
from fastmatch.index import CacheIndex
from fastmatch.inputs import PodRequest
from fastmatch.model import Image
from fastmatch.result import MatchResult

__all__ = ["DaskError", "Progress", "decide_in_parts", "decide_on_dask", "split_by_image_set"]

# Called with the number of pods just decided.
Progress = Callable[[int], None]


class DaskError(FastmatchError):
    """The Dask cluster cannot be reached or used (its address, or a worker's failure)."""


def _set_key(images: tuple[Image, ...]) -> Any:
    key = ImageSets.key(images)
    return key if key is not None else frozenset(image.key for image in images)


def split_by_image_set(requests: Sequence[PodRequest], parts: int) -> list[list[int]]:
    """The indexes of ``requests`` in at most ``parts`` parts, every pod of one image set
    in the same part, each part in input order, the parts about even in pods."""
    parts = max(1, parts)
    by_set: dict[Any, list[int]] = {}
    keys: dict[int, Any] = {}
    for i, request in enumerate(requests):
        images = request.images
        key = keys.get(id(images))
        if key is None:
            key = keys[id(images)] = _set_key(images)
        found = by_set.get(key)
        if found is None:
            by_set[key] = [i]
        else:
            found.append(i)
    # Largest sets first into the lightest part: parts of about the same size.
    load = [0] * parts
    members: list[list[list[int]]] = [[] for _ in range(parts)]
    for pods in sorted(by_set.values(), key=len, reverse=True):
        lightest = min(range(parts), key=load.__getitem__)
        members[lightest].append(pods)
        load[lightest] += len(pods)
    return [sorted(i for pods in part for i in pods) for part in members if part]


def _decide(index: CacheIndex, part: Sequence[PodRequest], now: datetime,
            threads: int | None = None) -> list[MatchResult]:
    return index.match_many([r.images for r in part], [r.policy for r in part], now=now,
                            threads=threads, pod_names=[r.name for r in part])


def decide_in_parts(
    index: CacheIndex,
    requests: Sequence[PodRequest],
    now: datetime,
    *,
    parts: int = 1,
    progress: Progress | None = None,
) -> list[MatchResult]:
    """Decide every pod on this machine (all cores), in ``parts`` batches so that
    ``progress`` hears of each: the same results as one ``match_many`` call."""
    if parts <= 1:
        results = _decide(index, requests, now)
        if progress is not None:
            progress(len(requests))
        return results
    out: list[MatchResult | None] = [None] * len(requests)
    for part in split_by_image_set(requests, parts):
        for i, result in zip(part, _decide(index, [requests[i] for i in part], now)):
            out[i] = result
        if progress is not None:
            progress(len(part))
    return out  # type: ignore[return-value]


# -- on Dask -----------------------------------------------------------------------

# A worker's loaded index, by the snapshot's scattered key: loaded once per worker.
_LOADED: dict[str, CacheIndex] = {}
_LOADING = threading.Lock()


def _decide_on_worker(snapshot: bytes, token: str, part: list[PodRequest],
                      now: datetime) -> list[MatchResult]:
    with _LOADING:
        index = _LOADED.get(token)
        if index is None:
            _LOADED.clear()  # another report's index: let it go
            index = _LOADED[token] = CacheIndex.load(io.BytesIO(snapshot))
    return _decide(index, part, now)


def decide_on_dask(
    index: CacheIndex,
    requests: Sequence[PodRequest],
    now: datetime,
    address: str,
    *,
    progress: Progress | None = None,
    parts_per_worker: int = 4,
) -> list[MatchResult]:
    """Decide every pod on the Dask cluster at ``address`` (``local``: a
    ``LocalCluster`` on this machine, started and stopped here): the same results as
    one ``match_many`` call on this machine."""
    try:
        dask: Any = importlib.import_module("distributed")  # the dask extra, untyped
    except ImportError:
        raise DaskError("--dask needs the dask extra: pip install 'fastmatch[dask]'") from None
    buffer = io.BytesIO()
    index.save(buffer)
    snapshot = buffer.getvalue()
    cluster: Any = None
    try:
        try:
            if address == "local":
                cluster = dask.LocalCluster(dashboard_address=None)
                client = dask.Client(cluster)
            else:
                client = dask.Client(address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskError(f"--dask {address}: cannot connect to the Dask cluster "
                            f"({exc})") from None
        with client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            shared = client.scatter(snapshot, broadcast=True, hash=True)
            token = shared.key if isinstance(shared.key, str) else str(shared.key)
            out: list[MatchResult | None] = [None] * len(requests)
            futures: dict[Any, list[int]] = {}
            for part in split_by_image_set(requests, workers * parts_per_worker):
                future = client.submit(_decide_on_worker, shared, token,
                                       [requests[i] for i in part], now, pure=False)
                futures[future] = part
            try:
                for future in dask.as_completed(futures):
                    part = futures[future]
                    for i, result in zip(part, future.result()):
                        out[i] = result
                    if progress is not None:
                        progress(len(part))
            except FastmatchError:
                raise
            except Exception as exc:  # a worker lost, a task that failed there
                raise DaskError(f"--dask {address}: a task failed on the cluster: "
                                f"{type(exc).__name__}: {exc}") from None
            return out  # type: ignore[return-value]
    finally:
        if cluster is not None:
            cluster.close()
