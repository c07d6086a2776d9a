"""A cluster's decisions summed up: the pods, the bytes, what each cache served (SPEC §11).

A cluster's pods are mostly replicas, and a batch gives every replica of a
workload the same result object: the sums here are taken once per
distinct (images, result) pair and multiplied by how many pods share it, so
a million pods cost about as much as their workloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from operator import is_
from typing import Any

from fastmatch.decision import pod_layers
from fastmatch.errors import ValidationError
from fastmatch.inputs import PodRequest
from fastmatch.inputs.pods import replica_runs
from fastmatch.model import Image, ImageCache
from fastmatch.policy import MatchPolicy
from fastmatch.result import MatchResult

__all__ = [
    "DEFAULT_BANDWIDTH",
    "CacheUse",
    "PodGroup",
    "Summary",
    "cache_uses",
    "iso",
    "pod_groups",
    "summarize",
]

DEFAULT_BANDWIDTH = 100.0  # MB/s (10^6 bytes): what a pod pulls at, without a cache


def iso(at: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC, seconds, ``Z``: ``2026-12-01T00:00:00Z``; ``None`` stays."""
    if at is None:
        return None
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PodGroup:
    """Pods that got one decision for the same images: a workload's replicas, mostly.

    ``count`` pods; ``images`` and ``policy`` theirs; ``result`` their
    decision; ``first`` the index of the first of them in the input;
    ``bytes`` the bytes of one pod's distinct layers (what it pulls without a
    cache)."""

    images: tuple[Image, ...]
    policy: MatchPolicy
    result: MatchResult
    first: int
    count: int
    bytes: int

    @property
    def missed(self) -> int:
        """Bytes one of these pods still pulls: its bytes less what its cache covers."""
        covered = self.result.covered if self.result.outcome == "use" else 0
        return self.bytes - covered


def pod_groups(requests: Sequence[PodRequest], results: Sequence[MatchResult]) -> list[PodGroup]:
    """The pods grouped by (images, result) object, in order of first appearance."""
    if len(requests) != len(results):
        raise ValidationError(f"report: {len(requests)} pods but {len(results)} results")
    found: dict[tuple[int, int], list[Any]] = {}
    nbytes: dict[int, int] = {}

    def add(request: PodRequest, result: MatchResult, at: int, count: int) -> None:
        images = request.images
        key = (id(images), id(result))
        group = found.get(key)
        if group is not None:
            group[4] += count
            return
        size = nbytes.get(id(images))
        if size is None:
            size = nbytes[id(images)] = sum(pod_layers(images).values())
        found[key] = [images, request.policy, result, at, count, size]

    # A workload's replicas share their images and, but for the first when it
    # proposed a cache, one result object: a run is summed at once when its results
    # say so (compared by identity, in C), pod by pod otherwise.
    at = 0
    for request, count in replica_runs(requests):
        end = at + count
        head = results[at]
        if count == 1 or all(map(is_, results[at + 1:end], repeat(head))):
            add(request, head, at, count)
        elif all(map(is_, results[at + 2:end], repeat(results[at + 1]))):
            add(request, head, at, 1)
            add(request, results[at + 1], at + 1, count - 1)
        else:
            for i in range(at, end):
                add(request, results[i], i, 1)
        at = end
    return [PodGroup(*group) for group in found.values()]


@dataclass(frozen=True)
class Summary:
    """The summary of SPEC §11: pods by outcome, bytes from caches and pulled, and the
    seconds the caches save at ``bandwidth`` MB/s."""

    pods: int
    perfect: int
    partial: int
    miss: int
    rejected: int
    bytes_from_cache: int
    bytes_pulled: int
    seconds_saved: float
    bandwidth: float = DEFAULT_BANDWIDTH

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``summary`` object (SPEC §11; the bandwidth is not in it)."""
        return {
            "pods": self.pods,
            "perfect": self.perfect,
            "partial": self.partial,
            "miss": self.miss,
            "rejected": self.rejected,
            "bytes_from_cache": self.bytes_from_cache,
            "bytes_pulled": self.bytes_pulled,
            "seconds_saved": self.seconds_saved,
        }

    @property
    def hit_rate(self) -> float:
        """The share of pods that started from a cache (0 with no pods)."""
        return (self.perfect + self.partial) / self.pods if self.pods else 0.0


def summarize(groups: Iterable[PodGroup], bandwidth: float = DEFAULT_BANDWIDTH) -> Summary:
    """The :class:`Summary` of these groups; ``bandwidth`` in MB/s (10^6 bytes)."""
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not (
        bandwidth > 0 and bandwidth != float("inf")
    ):
        raise ValidationError(f"report: bandwidth must be a positive number of MB/s, "
                              f"got {bandwidth!r}")
    pods = perfect = partial = miss = rejected = from_cache = pulled = 0
    for g in groups:
        n, r = g.count, g.result
        pods += n
        pulled += n * g.bytes
        if r.outcome == "use":
            from_cache += n * r.covered
            if r.perfect:
                perfect += n
            else:
                partial += n
        elif r.outcome == "reject":
            rejected += n
        else:
            miss += n
    seconds = from_cache / (bandwidth * 1e6)
    return Summary(pods, perfect, partial, miss, rejected, from_cache, pulled, seconds,
                   float(bandwidth))


@dataclass(frozen=True)
class CacheUse:
    """What one cache did for the pods: how many it served, the bytes it served, whether
    it served none (``idle``), and when it expires (SPEC §11's ``caches``)."""

    id: str
    pods: int
    bytes_served: int
    idle: bool
    expires: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of one cache (SPEC §11)."""
        return {"id": self.id, "pods": self.pods, "bytes_served": self.bytes_served,
                "idle": self.idle, "expires": iso(self.expires)}


def cache_uses(caches: Iterable[ImageCache], groups: Iterable[PodGroup]) -> list[CacheUse]:
    """Every cache of ``caches``, in their order, with the pods and bytes it served."""
    pods: dict[str, int] = {}
    served: dict[str, int] = {}
    for g in groups:
        r = g.result
        if r.outcome == "use" and r.cache_id is not None:
            pods[r.cache_id] = pods.get(r.cache_id, 0) + g.count
            served[r.cache_id] = served.get(r.cache_id, 0) + g.count * r.covered
    return [
        CacheUse(c.id, pods.get(c.id, 0), served.get(c.id, 0), c.id not in pods, c.expires_at)
        for c in caches
    ]
