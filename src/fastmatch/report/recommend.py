"""What to change: the caches to create, and the caches to delete (SPEC §11).

**Create.**  The pods that do not start from a cache holding all their
images (a miss, or a partial hit), with matching on and no cache named, are
the demand; each weighs the bytes it still pulls.  Every distinct image set
among them is a candidate cache (at most 20 images, within ECI's size
limit), and a candidate *serves* a pod when it holds every one of the pod's
images.  Choosing the ``k`` candidates that serve the most bytes is weighted
maximum coverage: NP-hard, but the greedy choice (repeatedly the candidate
serving the most bytes not yet served) serves at least ``1 - 1/e`` (about
63%) of what the best ``k`` candidates would (Nemhauser, Wolsey and Fisher,
1978), and no polynomial algorithm guarantees more unless P = NP (Feige,
1998).  The gains only shrink as caches are chosen (the objective is
submodular), so a stale gain in the priority queue is an upper bound: lazy
evaluation picks the same caches as the plain greedy, far faster.

**Delete.**  A cache that served no pod of the input (and is not being built);
then, fewest pods first, a cache whose every pod another cache serves at
least as well (the same or more images fully cached and bytes covered), found
by deciding those pods again without it.  A cache chosen for deletion stays
out when the next is looked at, and its pods move to the caches that served
them instead, so deleting every listed cache keeps every pod served as well.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastmatch.decision import pod_layers
from fastmatch.errors import ValidationError
from fastmatch.explain import human_bytes
from fastmatch.index import CacheIndex
from fastmatch.model import (
    AUTO_CREATE_BASE_GIB,
    MAX_IMAGES_PER_CACHE,
    MAX_SIZE_GIB,
    Image,
    ImageCache,
    Phase,
)
from fastmatch.report.aggregate import PodGroup

__all__ = [
    "DEFAULT_MAX_CREATE",
    "GREEDY_GUARANTEE",
    "CreateRecommendation",
    "DeleteRecommendation",
    "recommend_create",
    "recommend_delete",
]

DEFAULT_MAX_CREATE = 10
GREEDY_GUARANTEE = 1 - 1 / math.e  # of the bytes the best choice of as many caches serves
_GIB = 2**30
# Caches still being built serve nobody yet: not idle in a way worth deleting.
_BUILDING = frozenset({Phase.PREPARING, Phase.CREATING, Phase.UPDATING})


@dataclass(frozen=True)
class CreateRecommendation:
    """A cache to create: its images, its size, and the pods and bytes it would serve
    beyond the caches recommended before it."""

    images: tuple[Image, ...]
    size_gib: int
    pods: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC §11's ``recommendations.create``."""
        return {"images": [image.ref for image in self.images], "size_gib": self.size_gib,
                "pods": self.pods, "bytes": self.bytes}


@dataclass(frozen=True)
class DeleteRecommendation:
    """A cache to delete, and why."""

    id: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC §11's ``recommendations.delete``."""
        return {"id": self.id, "reason": self.reason}


def _demand(group: PodGroup) -> bool:
    r, policy = group.result, group.policy
    return (r.outcome != "reject" and not r.perfect and policy.auto
            and policy.cache_id is None and group.missed > 0)


def recommend_create(
    groups: Iterable[PodGroup], max_create: int = DEFAULT_MAX_CREATE
) -> list[CreateRecommendation]:
    """Up to ``max_create`` caches to create, best first, chosen greedily to serve the
    most bytes the pods of ``groups`` still pull (see the module's note for the
    ``1 - 1/e`` guarantee); a cache that would serve nothing more is not listed."""
    if isinstance(max_create, bool) or not isinstance(max_create, int) or max_create < 0:
        raise ValidationError(f"report: the number of caches to recommend must be an "
                              f"integer >= 0, got {max_create!r}")
    # Demand, by image set: the pods and the bytes they still pull.
    demand: dict[frozenset[str], list[Any]] = {}
    for g in groups:
        if not _demand(g):
            continue
        key = frozenset(image.key for image in g.images)
        entry = demand.get(key)
        if entry is None:
            demand[key] = [g.images, g.count, g.count * g.missed]
        else:
            entry[1] += g.count
            entry[2] += g.count * g.missed
    keys = list(demand)
    pods = [demand[k][1] for k in keys]
    weight = [demand[k][2] for k in keys]
    # Candidates: the demanded image sets a cache may hold.
    candidates: list[tuple[int, int]] = []  # (demand index, size_gib)
    for j, key in enumerate(keys):
        images = demand[key][0]
        size = sum(pod_layers(images).values())
        size_gib = max(AUTO_CREATE_BASE_GIB, math.ceil(size / _GIB))
        if len(key) <= MAX_IMAGES_PER_CACHE and size_gib <= MAX_SIZE_GIB:
            candidates.append((j, size_gib))
    # Which demand sets each candidate serves: those whose images it all holds,
    # found by intersecting the candidates that hold each image.
    holders: dict[str, set[int]] = {}
    for c, (j, _) in enumerate(candidates):
        for image_key in keys[j]:
            holders.setdefault(image_key, set()).add(c)
    serves: list[list[int]] = [[] for _ in candidates]
    for j, key in enumerate(keys):
        sets = sorted((holders.get(k, set()) for k in key), key=len)
        if not sets or not sets[0]:
            continue
        for c in set.intersection(*sets):
            serves[c].append(j)
    # Lazy greedy: gains only shrink, so a popped gain that is still current is the best.
    served = [False] * len(keys)

    def gain(c: int) -> tuple[int, int]:
        live = [j for j in serves[c] if not served[j]]
        return sum(weight[j] for j in live), sum(pods[j] for j in live)

    heap = [(-gain(c)[0], len(keys[candidates[c][0]]), c, c) for c in range(len(candidates))]
    heapq.heapify(heap)
    chosen: list[CreateRecommendation] = []
    while heap and len(chosen) < max_create:
        stale, n_images, order, c = heapq.heappop(heap)
        now_bytes, now_pods = gain(c)
        if now_bytes <= 0:
            continue
        if -stale != now_bytes:
            heapq.heappush(heap, (-now_bytes, n_images, order, c))
            continue
        for j in serves[c]:
            served[j] = True
        j, size_gib = candidates[c]
        chosen.append(CreateRecommendation(demand[keys[j]][0], size_gib, now_pods, now_bytes))
    return chosen


def _idle_reason(cache: ImageCache, pods: int, now: datetime) -> str | None:
    """Why an idle cache should go, or ``None`` when it should stay (being built)."""
    of = f"of the {pods:,} pod{'s' if pods != 1 else ''}"
    if cache.expired(now):
        return f"served none {of}: it has expired"
    if cache.phase in _BUILDING:
        return None
    if cache.phase is not Phase.READY:
        return f"served none {of}: it is {cache.phase.value}, not Ready"
    return f"served none {of}"


def recommend_delete(
    caches: Sequence[ImageCache],
    groups: Sequence[PodGroup],
    now: datetime,
) -> list[DeleteRecommendation]:
    """The caches to delete (see the module's note): idle ones, then the ones whose
    every pod another cache serves at least as well, each with its reason."""
    total = sum(g.count for g in groups)
    served: dict[str, list[tuple[PodGroup, int, int]]] = {}  # id -> (group, full, covered)
    for g in groups:
        r = g.result
        if r.outcome == "use" and r.cache_id is not None:
            served.setdefault(r.cache_id, []).append((g, r.full, r.covered))
    out: list[DeleteRecommendation] = []
    keep: list[ImageCache] = []
    for cache in caches:
        if cache.id in served:
            keep.append(cache)
            continue
        why = _idle_reason(cache, total, now)
        if why is None:
            keep.append(cache)
        else:
            out.append(DeleteRecommendation(cache.id, why))
    if not served:
        return out
    index = CacheIndex(keep)

    def load(cache_id: str) -> tuple[int, int]:
        pods = sum(g.count for g, _, _ in served[cache_id])
        return pods, sum(g.count * covered for g, _, covered in served[cache_id])

    order = sorted(served, key=lambda cid: (*load(cid), cid))
    for cache_id in order:
        mine = served.get(cache_id)
        held = index.get(cache_id)
        if not mine or held is None:
            continue
        index.remove(cache_id)
        again = index.match_many([g.images for g, _, _ in mine],
                                 [g.policy for g, _, _ in mine], now=now, threads=1)
        if all(r.outcome == "use" and r.full >= full and r.covered >= covered
               for r, (_, full, covered) in zip(again, mine)):
            others = sorted({r.cache_id for r in again if r.cache_id is not None})
            pods = sum(g.count for g, _, _ in mine)
            nbytes = sum(g.count * covered for g, _, covered in mine)
            by = others[0] + (f" and {len(others) - 1} more" if len(others) > 1 else "")
            out.append(DeleteRecommendation(
                cache_id,
                f"every one of its {pods:,} pod{'s' if pods != 1 else ''} "
                f"({human_bytes(nbytes)} served) is served at least as well by {by}"))
            del served[cache_id]
            for r, (g, _, _) in zip(again, mine):
                assert r.cache_id is not None
                served.setdefault(r.cache_id, []).append((g, r.full, r.covered))
        else:
            index.upsert(held)
    return out
