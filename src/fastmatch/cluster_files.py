"""A cluster's files, read and decided: what ``fastmatch match`` and ``fastmatch report`` share.

:func:`read_cluster` reads image caches, pods and workloads (one request per
replica), the eci-profile and the namespaces' labels through the inputs
readers (SPEC §8), and says what the user should know about them;
:func:`decide` matches every pod in one ``match_many`` batch, so that replicas
propose one cache to create between them (SPEC §3.7).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from fastmatch.index import CacheIndex
from fastmatch.inputs import (
    EciProfile,
    LayerSource,
    PodRequest,
    read_caches,
    read_namespaces,
    read_pods,
    read_profile,
)
from fastmatch.model import Image, ImageCache
from fastmatch.result import MatchResult
from fastmatch.timeutil import utcnow

__all__ = ["ClusterFiles", "Decisions", "decide", "read_cluster"]

Paths = Iterable[str | os.PathLike[str]]


class ClusterFiles(NamedTuple):
    """What a cluster's files hold: the pods (one per replica, in input order), the
    caches (in input order), the time to decide at, and warnings for the user."""

    requests: list[PodRequest]
    caches: list[ImageCache]
    now: datetime
    warnings: list[str]


class Decisions(NamedTuple):
    """What ``fastmatch match`` decided: the pods (one per replica, in input order), their
    results, the caches (indexed), the time decided at, and warnings for the user."""

    requests: list[PodRequest]
    results: list[MatchResult]
    caches: CacheIndex
    now: datetime
    warnings: list[str]


def _namespace_warnings(
    profile: EciProfile | None,
    namespaces: dict[str, dict[str, str]] | None,
    requests: Sequence[PodRequest],
) -> list[str]:
    """What a profile that selects on namespace labels cannot see: no --namespaces, or
    pods in namespaces the file does not list (both read as a namespace without labels)."""
    if profile is None or not any(s.namespace_selector for s in profile.selectors):
        return []
    if namespaces is None:
        return ["the eci-profile selects on namespace labels, but --namespaces was not "
                "given: every namespace is taken to have no labels"]
    missing = sorted({r.namespace for r in requests} - namespaces.keys())
    if not missing:
        return []
    return [f"namespace{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in "
            f"--namespaces: taken to have no labels for the eci-profile"]


def read_cluster(
    caches: Paths,
    pods: Paths,
    *,
    catalog: LayerSource | None = None,
    profile: str | os.PathLike[str] | None = None,
    namespaces: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> ClusterFiles:
    """Read the caches and pods in these paths (files, directories, ``-``), with the
    layers ``catalog`` gives and the eci-profile ConfigMap in ``profile`` (the
    namespaces' labels from the ``Namespace`` objects in ``namespaces``); raise
    :class:`~fastmatch.errors.FastmatchError` on bad input, naming the file, the
    document and the field."""
    at = now if now is not None else utcnow()
    found_caches = read_caches(caches, catalog=catalog, now=at)
    eci_profile = read_profile(profile) if profile is not None else None
    labels = read_namespaces(namespaces) if namespaces is not None else None
    requests = read_pods(pods, catalog=catalog, profile=eci_profile, namespaces=labels)
    warnings = _namespace_warnings(eci_profile, labels, requests)
    if not requests:
        warnings.append("the files hold no Pod or workload (other kinds are skipped)")
    return ClusterFiles(requests, found_caches, at, warnings)


def decide(files: ClusterFiles, *, index: CacheIndex | None = None) -> Decisions:
    """Decide every pod of ``files`` in one ``match_many`` batch, against ``index``
    (default: an index of ``files.caches``)."""
    if index is None:
        index = CacheIndex(files.caches)
    requests = files.requests
    # A list per workload, shared by its replicas: match_many copies a tuple per pod.
    lists: dict[int, list[Image]] = {}
    results = index.match_many(
        [lists.get(id(r.images)) or lists.setdefault(id(r.images), list(r.images))
         for r in requests],
        [r.policy for r in requests],
        now=files.now,
        pod_names=[r.name for r in requests],
    )
    return Decisions(requests, results, index, files.now, files.warnings)
