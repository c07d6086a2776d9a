"""A whole cluster's report: :class:`ClusterReport`, made by :func:`build_report`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastmatch.index import CacheIndex
from fastmatch.inputs import PodRequest
from fastmatch.report.aggregate import (
    DEFAULT_BANDWIDTH,
    CacheUse,
    PodGroup,
    Summary,
    cache_uses,
    pod_groups,
    summarize,
)
from fastmatch.report.recommend import (
    DEFAULT_MAX_CREATE,
    CreateRecommendation,
    DeleteRecommendation,
    recommend_create,
    recommend_delete,
)
from fastmatch.report.simulate import DayRate
from fastmatch.result import MatchResult

__all__ = ["ClusterReport", "build_report"]


@dataclass
class ClusterReport:
    """What ``fastmatch report`` says about a cluster (SPEC §11).

    ``requests`` and ``results``: every pod (one per replica, in input order)
    and its decision; ``groups``: the pods grouped by decision;
    ``summary``; ``caches``: what each cache did; ``create`` and ``delete``:
    the recommendations; ``simulation``: the hit rate per day of the
    auto-create lifecycle over a history, when one was simulated.
    """

    requests: Sequence[PodRequest]
    results: Sequence[MatchResult]
    groups: list[PodGroup]
    summary: Summary
    caches: list[CacheUse]
    create: list[CreateRecommendation]
    delete: list[DeleteRecommendation]
    now: datetime
    simulation: list[DayRate] | None = None
    warnings: list[str] = field(default_factory=list)

    def pod_rows(self) -> list[dict[str, Any]]:
        """The ``pods`` of the JSON: SPEC §9's fields, one object per pod."""
        return [{"namespace": q.namespace, "name": q.name, **r.as_dict()}
                for q, r in zip(self.requests, self.results)]

    def as_dict(self) -> dict[str, Any]:
        """The report as SPEC §11's JSON (with ``simulation`` when there is one)."""
        out: dict[str, Any] = {
            "summary": self.summary.as_dict(),
            "pods": self.pod_rows(),
            "caches": [c.as_dict() for c in self.caches],
            "recommendations": {
                "create": [c.as_dict() for c in self.create],
                "delete": [d.as_dict() for d in self.delete],
            },
        }
        if self.simulation is not None:
            out["simulation"] = [d.as_dict() for d in self.simulation]
        return out


def build_report(
    index: CacheIndex,
    requests: Sequence[PodRequest],
    results: Sequence[MatchResult],
    now: datetime,
    *,
    bandwidth: float = DEFAULT_BANDWIDTH,
    max_create: int = DEFAULT_MAX_CREATE,
    simulation: list[DayRate] | None = None,
    warnings: Sequence[str] = (),
) -> ClusterReport:
    """The report of these decisions (``results[i]`` is ``requests[i]``'s) against the
    caches of ``index``, at ``now``; ``bandwidth`` in MB/s turns bytes into seconds."""
    groups = pod_groups(requests, results)
    summary = summarize(groups, bandwidth)
    caches = list(index)
    return ClusterReport(
        requests=requests,
        results=results,
        groups=groups,
        summary=summary,
        caches=cache_uses(caches, groups),
        create=recommend_create(groups, max_create),
        delete=recommend_delete(caches, groups, now),
        now=now,
        simulation=simulation,
        warnings=list(warnings),
    )
