"""A cluster's files, read and decided: what ``fastmatch match`` and ``fastmatch report`` share.

:func:`read_cluster` reads image caches, pods and workloads (one request per
replica), the eci-profile and the namespaces' labels through the inputs
readers (SPEC §8), and says what the user should know about them;
:func:`cluster_from_documents` does the same from documents a program parsed
already; :func:`decide` matches every pod in one ``match_many`` batch, so that
replicas propose one cache to create between them (SPEC §3.7).

Both run with the garbage collector paused (``bulk``): a cluster is a million
small objects and no cycles, and a collection walks every one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from fastmatch.errors import InputFileError
from fastmatch.index import CacheIndex
from fastmatch.inputs import (
    EciProfile,
    ImageReader,
    LayerSource,
    Located,
    PodRequest,
    read_namespaces,
    read_objects,
    read_profile,
)
from fastmatch.inputs.caches import caches_from, unique_caches
from fastmatch.inputs.documents import bulk, objects_in
from fastmatch.inputs.pods import requests_from, workload_lists
from fastmatch.model import ImageCache
from fastmatch.result import MatchResult
from fastmatch.timeutil import utcnow

__all__ = ["ClusterFiles", "Decisions", "cluster_from_documents", "decide", "read_cluster"]

Paths = Iterable[str | os.PathLike[str]]


class ClusterFiles(NamedTuple):
    """What a cluster's files hold: the pods (one per replica, in input order; kept as
    runs of replicas by the readers), the caches (in input order), the time to decide at,
    and warnings for the user."""

    requests: Sequence[PodRequest]
    caches: list[ImageCache]
    now: datetime
    warnings: list[str]


class Decisions(NamedTuple):
    """What ``fastmatch match`` decided: the pods (one per replica, in input order), their
    results, the caches (indexed), the time decided at, and warnings for the user."""

    requests: Sequence[PodRequest]
    results: list[MatchResult]
    caches: CacheIndex
    now: datetime
    warnings: list[str]


def _namespace_warnings(
    profile: EciProfile | None,
    namespaces: Mapping[str, Mapping[str, str]] | None,
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
    # One reader for the caches and the pods: a reference both list is looked up once,
    # and gives both one image object.
    reader = ImageReader(catalog)
    with bulk():
        found_caches = unique_caches(caches_from(read_objects(caches), reader, at))
        eci_profile = read_profile(profile) if profile is not None else None
        labels = read_namespaces(namespaces) if namespaces is not None else None
        requests = requests_from(read_objects(pods), reader, eci_profile, labels)
    return _cluster(requests, found_caches, at, eci_profile, labels)


def _cluster(
    requests: Sequence[PodRequest],
    caches: list[ImageCache],
    at: datetime,
    profile: EciProfile | None,
    labels: Mapping[str, Mapping[str, str]] | None,
) -> ClusterFiles:
    warnings = _namespace_warnings(profile, labels, requests)
    if not requests:
        warnings.append("the files hold no Pod or workload (other kinds are skipped)")
    return ClusterFiles(requests, caches, at, warnings)


def _located(docs: Iterable[object], name: str) -> list[Located]:
    if isinstance(docs, (str, bytes, Mapping)) or not isinstance(docs, Iterable):
        raise InputFileError(f"{name}: expected a list of documents, got {type(docs).__name__}")
    found: list[Located] = []
    for number, doc in enumerate(docs, 1):
        if doc is not None:
            found.extend(objects_in(doc, f"{name}: document {number}"))
    return found


def cluster_from_documents(
    caches: Iterable[object],
    pods: Iterable[object],
    *,
    catalog: LayerSource | None = None,
    profile: EciProfile | None = None,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    now: datetime | None = None,
) -> ClusterFiles:
    """:func:`read_cluster` from documents already parsed (each what one YAML document or
    JSON file holds: an object, a ``List``, an array), for a program that has them in
    memory: the same requests, caches and warnings as files holding these documents
    would give.  Errors name ``caches`` or ``pods``, the document (numbered from 1) and
    the field; ``namespaces`` maps a namespace's name to its labels."""
    at = now if now is not None else utcnow()
    reader = ImageReader(catalog)  # one for both, as read_cluster's
    with bulk():
        found = unique_caches(caches_from(_located(caches, "caches"), reader, at))
        requests = requests_from(_located(pods, "pods"), reader, profile, namespaces)
    return _cluster(requests, found, at, profile, namespaces)


def decide(files: ClusterFiles, *, index: CacheIndex | None = None) -> Decisions:
    """Decide every pod of ``files`` in one ``match_many`` batch, against ``index``
    (default: an index of ``files.caches``)."""
    requests = files.requests
    with bulk():
        if index is None:
            index = CacheIndex(files.caches)
        # One entry per workload, not per replica.
        pods, policies, counts, names = workload_lists(requests)
        results = index.match_many(pods, policies, now=files.now, pod_names=names,
                                   replicas=counts)
    return Decisions(requests, results, index, files.now, files.warnings)
