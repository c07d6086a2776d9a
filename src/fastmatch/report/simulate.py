"""ECI's auto-create lifecycle played over a pod history: the hit rate it would give, by day.

Pods arrive in time order; each is decided against the caches of that moment
(SPEC §3).  A pod served by a cache records the match (SPEC §4: an
auto-created cache lives 30 days after its last match).  A pod that proposes
a cache (SPEC §3.7) makes ECI create it: ``Creating`` at the pod's time,
``Ready`` after the creation delay, auto-created, so kept 7 days if nobody
matches it.  Over a quota of auto-created caches, the least recently matched
go first (expired ones before them).  The history starts from the caches
given (none, for "what would auto-create alone give us").

A history is read from Pods and workloads (their ``metadata.creationTimestamp``;
every replica of a workload starts then), as files or JSON Lines, one object
a line, either the object itself or ``{"time": ISO-8601, "pod": object}``.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from fastmatch.errors import FastmatchError, ValidationError
from fastmatch.index import CacheIndex
from fastmatch.inputs import EciProfile, ImageReader, LayerSource, Located, PodRequest, read_objects
from fastmatch.inputs.pods import requests_from
from fastmatch.lifecycle import evict_over_quota
from fastmatch.model import ImageCache, Phase
from fastmatch.timeutil import to_datetime

__all__ = ["DEFAULT_CREATION_DELAY", "DayRate", "TimedPod", "read_history", "simulate"]

# ECI's documented creation of an image cache takes minutes (it pulls the images).
DEFAULT_CREATION_DELAY = timedelta(minutes=10)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class TimedPod:
    """A pod of the history: when it started, and its request."""

    at: datetime
    request: PodRequest


@dataclass(frozen=True)
class DayRate:
    """One day of a simulation: the pods that started, how many started from a cache
    (``hits``), how many of those with all their images (``perfect``), and how many
    caches ECI created that day."""

    day: date
    pods: int
    hits: int
    perfect: int
    created: int

    @property
    def hit_rate(self) -> float | None:
        """``hits / pods``, or ``None`` on a day without pods."""
        return self.hits / self.pods if self.pods else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of one day."""
        rate = self.hit_rate
        return {"day": self.day.isoformat(), "pods": self.pods, "hits": self.hits,
                "perfect": self.perfect, "created": self.created,
                "hit_rate": None if rate is None else round(rate, 6)}


def _start_of(at: datetime) -> datetime:
    return at.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def simulate(
    history: Iterable[TimedPod],
    caches: Iterable[ImageCache] = (),
    *,
    creation_delay: timedelta = DEFAULT_CREATION_DELAY,
    quota: int | None = None,
) -> list[DayRate]:
    """The hit rate per day (UTC) that ECI's auto-create lifecycle gives over ``history``,
    starting from ``caches``; every day from the first pod's to the last's is listed.

    ``creation_delay``: how long a created cache takes to be ``Ready``;
    ``quota``: at most this many auto-created caches (``None``: no quota).
    """
    if not isinstance(creation_delay, timedelta) or creation_delay < timedelta(0):
        raise ValidationError(f"simulate: the creation delay must be a duration >= 0, "
                              f"got {creation_delay!r}")
    if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int)
                              or quota < 0):
        raise ValidationError(f"simulate: the quota must be an integer >= 0, got {quota!r}")
    pods = sorted(history, key=lambda p: p.at)  # stable: ties keep the input's order
    if not pods:
        return []
    index = CacheIndex(caches)
    becoming_ready: list[tuple[datetime, int, str]] = []
    made = 0
    days: dict[date, list[int]] = {}
    today: datetime | None = None
    for pod in pods:
        at = pod.at
        while becoming_ready and becoming_ready[0][0] <= at:
            _, _, cache_id = heapq.heappop(becoming_ready)
            building = index.get(cache_id)
            if building is not None:  # evicted before it was Ready otherwise
                index.upsert(building.replace(phase=Phase.READY))
        start = _start_of(at)
        if start != today:
            # Once a day, let go of what has expired: the decision already ignores
            # expired caches, this only keeps the index from growing for good.
            today = start
            for gone in index.expired(at):
                index.remove(gone.id)
        counts = days.setdefault(start.date(), [0, 0, 0, 0])
        counts[0] += 1
        result = index.match_pod(pod.request, now=at)
        if result.outcome == "use" and result.cache_id is not None:
            counts[1] += 1
            counts[2] += result.perfect
            index.record_match(result.cache_id, at)
        proposal = result.create
        if proposal is None:
            continue
        made += 1
        cache_id = proposal.name if proposal.name not in index else f"{proposal.name}-{made}"
        ready_now = creation_delay <= timedelta(0)
        index.upsert(proposal.to_cache(cache_id, created=at,
                                       phase=Phase.READY if ready_now else Phase.CREATING))
        if not ready_now:
            heapq.heappush(becoming_ready, (at + creation_delay, made, cache_id))
        counts[3] += 1
        if quota is not None:
            for evicted in evict_over_quota(index, quota, at):
                index.remove(evicted.id)
    first, last = min(days), max(days)
    out: list[DayRate] = []
    day = first
    while day <= last:
        n, hits, perfect, created = days.get(day, (0, 0, 0, 0))
        out.append(DayRate(day, n, hits, perfect, created))
        day += _DAY
    return out


def _time_of(obj: Mapping[str, Any]) -> object:
    meta = obj.get("metadata")
    return meta.get("creationTimestamp") if isinstance(meta, Mapping) else None


def read_history(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    catalog: LayerSource | None = None,
    profile: EciProfile | None = None,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
) -> list[TimedPod]:
    """The pods of ``paths`` with their start times (see the module's note), in input
    order; other kinds are skipped.  Bad input raises
    :class:`~fastmatch.errors.InputFileError` naming the file, the object and the field."""
    reader = ImageReader(catalog)
    out: list[TimedPod] = []
    for located in read_objects(paths):
        obj = located.obj
        if not isinstance(obj, Mapping):
            raise located.error(ValidationError("expected an object"))
        field = "metadata.creationTimestamp"
        if "pod" in obj and "kind" not in obj:
            when, field = obj.get("time"), "time"
            inner = obj.get("pod")
            if not isinstance(inner, Mapping):
                raise located.error(ValidationError("pod: expected a Pod or workload object"))
            located = Located(inner, located.where)
        else:
            when = _time_of(obj)
        requests = requests_from([located], reader, profile, namespaces)
        if not requests:
            continue
        if when is None:
            raise located.error(ValidationError(f"{field}: missing (the pod's start time)"))
        try:
            at = to_datetime(when, field)
        except FastmatchError as exc:
            raise located.error(exc) from None
        out.extend(TimedPod(at, request) for request in requests)
    return out
