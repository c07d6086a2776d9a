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

import numpy as np
import numpy.typing as npt

from fastmatch.decision import ImageSets
from fastmatch.errors import FastmatchError
from fastmatch.index import CacheIndex
from fastmatch.inputs import PodRequest
from fastmatch.inputs.pods import match_lists, workload_lists
from fastmatch.model import Image
from fastmatch.policy import MatchPolicy
from fastmatch.report.errors import DaskError, ReportExtraError
from fastmatch.result import MatchResult

__all__ = ["Progress", "decide_in_parts", "decide_on_dask", "image_lists", "split_by_image_set"]

# Called with the number of pods just decided.
Progress = Callable[[int], None]
# A part's pods for a worker: (images, policy, first pod's name) once each, and which one
# each pod asks for; and a worker's answer: the distinct results, and which one each pod got.
Compact = tuple[list[tuple[tuple[Image, ...], MatchPolicy, str]], npt.NDArray[np.int32]]
Answer = tuple[list[MatchResult], npt.NDArray[np.int32]]


def _set_key(images: tuple[Image, ...]) -> Any:
    key = ImageSets.key(images)
    return key if key is not None else frozenset(image.key for image in images)


class _Groups:
    """The pods as their distinct (images, policy) pairs: a workload's replicas are one.

    ``table[k]``: the images, the policy and the name of the first pod of
    pair ``k``; ``of_pod[i]``: pod ``i``'s pair (one pass over the pods; the
    rest works on the pairs, or on NumPy arrays of the pods).
    """

    def __init__(self, requests: Sequence[PodRequest]) -> None:
        table: list[tuple[tuple[Image, ...], MatchPolicy, str]] = []
        seen: dict[tuple[int, int], int] = {}
        of_pod = np.empty(len(requests), dtype=np.int32)
        for i, request in enumerate(requests):
            images, policy = request.images, request.policy
            key = (id(images), id(policy))
            k = seen.get(key)
            if k is None:
                k = seen[key] = len(table)
                table.append((images, policy, request.name))
            of_pod[i] = k
        self.table = table
        self.of_pod = of_pod

    def parts(self, parts: int) -> list[npt.NDArray[np.intp]]:
        """The pods' indexes in at most ``parts`` parts, every pod of one image set in
        the same part, each in input order, the parts about even in pods."""
        parts = max(1, parts)
        pods_of = np.bincount(self.of_pod, minlength=len(self.table))
        by_set: dict[Any, list[int]] = {}
        for k, (images, _, _) in enumerate(self.table):
            by_set.setdefault(_set_key(images), []).append(k)
        # Largest sets first into the lightest part: parts of about the same size.
        load = [0] * parts
        part_of = np.zeros(len(self.table), dtype=np.int32)
        sized = sorted(by_set.values(), key=lambda ks: -int(pods_of[ks].sum()))
        for pairs in sized:
            lightest = min(range(parts), key=load.__getitem__)
            part_of[pairs] = lightest
            load[lightest] += int(pods_of[pairs].sum())
        of_pod = part_of[self.of_pod]
        found = [np.flatnonzero(of_pod == p) for p in range(parts)]
        return [pods for pods in found if len(pods)]

    def compact(self, pods: npt.NDArray[np.intp]) -> Compact:
        """Pods ``pods`` as a worker needs them: their pairs once each, and which pair
        each pod asks for."""
        pairs, which = np.unique(self.of_pod[pods], return_inverse=True)
        return [self.table[k] for k in pairs.tolist()], which.astype(np.int32)


def image_lists(requests: Sequence[PodRequest]) -> list[list[Image]]:
    """Each pod's images as a list, one list shared by the pods that share their images
    (a workload's replicas): what ``match_many`` takes without a copy per pod."""
    return match_lists(requests)[0]


def split_by_image_set(requests: Sequence[PodRequest], parts: int) -> list[list[int]]:
    """The indexes of ``requests`` in at most ``parts`` parts, every pod of one image set
    in the same part, each part in input order, the parts about even in pods."""
    return [pods.tolist() for pods in _Groups(requests).parts(parts)]


def _decide_compact(index: CacheIndex, part: Compact, now: datetime,
                    threads: int | None = None) -> Answer:
    """Decide a part's pods (see :meth:`_Groups.compact`) in one batch: the distinct
    results, and which one each pod got."""
    table, which = part
    ks = which.tolist()
    # One list per pair, shared by its pods: match_many takes a list as it is (a tuple
    # it copies), and groups replicas by the objects they share.
    images = [list(t[0]) for t in table]
    policies = [t[1] for t in table]
    # A pod's name is read only when its pair's first pod proposes a cache (§3.7).
    names = [""] * len(ks)
    _, firsts = np.unique(which, return_index=True)
    for k, at in enumerate(firsts.tolist()):
        names[at] = table[k][2]
    results = index.match_many([images[k] for k in ks], [policies[k] for k in ks], now=now,
                               threads=threads, pod_names=names)
    # Replicas share their result object: each distinct one is listed once.
    distinct: list[MatchResult] = []
    seen: dict[int, int] = {}
    answer = np.empty(len(results), dtype=np.int32)
    for j, result in enumerate(results):
        got = seen.get(id(result))
        if got is None:
            got = seen[id(result)] = len(distinct)
            distinct.append(result)
        answer[j] = got
    return distinct, answer


def _place(out: list[MatchResult | None], pods: npt.NDArray[np.intp], answer: Answer) -> None:
    distinct, which = answer
    for i, k in zip(pods.tolist(), which.tolist()):
        out[i] = distinct[k]


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
        lists, policies, counts, names = workload_lists(requests)  # one entry a workload
        results = index.match_many(lists, policies, now=now, pod_names=names,
                                   replicas=counts)
        if progress is not None:
            progress(len(requests))
        return results
    groups = _Groups(requests)
    out: list[MatchResult | None] = [None] * len(requests)
    for pods in groups.parts(parts):
        _place(out, pods, _decide_compact(index, groups.compact(pods), now))
        if progress is not None:
            progress(len(pods))
    return out  # type: ignore[return-value]


# -- on Dask -----------------------------------------------------------------------

# A worker's loaded index, by the snapshot's scattered key: loaded once per worker.
_LOADED: dict[str, CacheIndex] = {}
_LOADING = threading.Lock()


def _decide_on_worker(snapshot: bytes, token: str, part: Compact, now: datetime) -> Answer:
    with _LOADING:
        index = _LOADED.get(token)
        if index is None:
            _LOADED.clear()  # another report's index: let it go
            index = _LOADED[token] = CacheIndex.load(io.BytesIO(snapshot))
    return _decide_compact(index, part, now)


def decide_on_dask(
    index: CacheIndex,
    requests: Sequence[PodRequest],
    now: datetime,
    address: str,
    *,
    progress: Progress | None = None,
    parts_per_worker: int = 2,
    connect_timeout: float = 10.0,
) -> list[MatchResult]:
    """Decide every pod on the Dask cluster at ``address`` (``local``: a
    ``LocalCluster`` on this machine, started and stopped here): the same results as
    one ``match_many`` call on this machine.  A scheduler that does not answer within
    ``connect_timeout`` seconds raises :class:`DaskError`."""
    try:
        dask: Any = importlib.import_module("distributed")  # the dask extra, untyped
    except ImportError:
        raise ReportExtraError("--dask needs the dask extra: pip install 'fastmatch[dask]'") \
            from None
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
                client = dask.Client(address, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskError(f"--dask {address}: cannot connect to the Dask cluster "
                            f"({exc})") from None
        with client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            shared = client.scatter(snapshot, broadcast=True, hash=True)
            token = shared.key if isinstance(shared.key, str) else str(shared.key)
            out: list[MatchResult | None] = [None] * len(requests)
            groups = _Groups(requests)
            futures: dict[Any, npt.NDArray[np.intp]] = {}
            for pods in groups.parts(workers * parts_per_worker):
                future = client.submit(_decide_on_worker, shared, token, groups.compact(pods),
                                       now, pure=False)
                futures[future] = pods
            try:
                for future in dask.as_completed(futures):
                    pods = futures[future]
                    _place(out, pods, future.result())
                    if progress is not None:
                        progress(len(pods))
            except FastmatchError:
                raise
            except Exception as exc:  # a worker lost, a task that failed there
                raise DaskError(f"--dask {address}: a task failed on the cluster: "
                                f"{type(exc).__name__}: {exc}") from None
            return out  # type: ignore[return-value]
    finally:
        if cluster is not None:
            cluster.close()
