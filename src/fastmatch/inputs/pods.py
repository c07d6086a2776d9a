"""Pods and workloads into :class:`PodRequest`: what a pod asks of ECI's image caches.

A ``Pod``, or a workload's pod template (``Deployment``, ``StatefulSet``,
``DaemonSet``, ``ReplicaSet``, ``ReplicationController``, ``Job``,
``CronJob``'s ``jobTemplate``, ``PodTemplate``), gives a request (SPEC §8):
the distinct images of its init and regular containers (not its ephemeral
containers'), the template's annotations (not the workload's own), the
platform its node selector asks for, its name and namespace.

Workloads count once per replica: ``replicas: 3`` gives ``web-0``, ``web-1``
and ``web-2`` (absent means 1, ``0`` none); a DaemonSet, Job, CronJob or
PodTemplate gives one, named after it.  Every request of one workload shares
its image tuple and its policy object, so ``match_many`` scores them once.
"""

from __future__ import annotations

import bisect
import functools
import operator
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from fastmatch.errors import FastmatchError, InputFileError, ValidationError
from fastmatch.inputs._fastpods import PlainWorkloads
from fastmatch.inputs.documents import (
    FieldError,
    Located,
    bulk,
    field_error,
    label,
    read_objects,
)
from fastmatch.inputs.images import ImageReader
from fastmatch.inputs.source import LayerSource
from fastmatch.model import Image, distinct_images
from fastmatch.platforms import normalize_arch, normalize_os
from fastmatch.policy import ANNOTATIONS, MatchPolicy

if TYPE_CHECKING:
    from fastmatch.inputs.profile import EciProfile

__all__ = [
    "NAMESPACE_NAME_LABEL",
    "REPLICATED_KINDS",
    "SINGLE_KINDS",
    "PodRequest",
    "PodRequests",
    "match_lists",
    "pod_requests",
    "read_pods",
    "replica_runs",
    "requests_from",
    "workload_lists",
]

# Kinds whose spec.replicas counts pods, and kinds that make one pod here.
REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})
SINGLE_KINDS = frozenset({"DaemonSet", "Job", "CronJob", "PodTemplate"})
_MAX_REPLICAS = 1_000_000  # more than one workload's pods a cluster runs

_ARCH_KEYS = ("kubernetes.io/arch", "beta.kubernetes.io/arch")
_OS_KEYS = ("kubernetes.io/os", "beta.kubernetes.io/os")

_EMPTY: Mapping[str, str] = {}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server since 1.21


class _Shared(NamedTuple):
    """What every replica of a workload has in common (one per workload)."""

    images: tuple[Image, ...]
    annotations: Mapping[str, str]
    namespace: str
    storage_gib: float | None
    arch: str | None
    os: str | None
    policy: MatchPolicy
    workload: str


class _Fields:
    """A :class:`PodRequest`'s storage, writable: requests are built as this, then
    become a ``PodRequest`` by assigning ``__class__`` (one is made per replica)."""

    __slots__ = ("_shared", "name")

    name: str
    _shared: _Shared



def _request(name: str, shared: _Shared) -> PodRequest:
    r = object.__new__(_Fields)
    r.name = name
    r._shared = shared
    r.__class__ = PodRequest
    return r  # type: ignore[return-value]


class PodRequest(_Fields):
    """A pod about to start, as the decision sees it (SPEC §1, §8).

    ``images``: its distinct images (a tuple of :class:`~fastmatch.Image`);
    ``annotations``: its annotations (ECI's of SPEC §2 among them);
    ``name``/``namespace``; ``storage_gib``: the instance's storage limit, when
    caches larger than it should not be candidates; ``arch``/``os``: its
    platform, when known; ``policy``: the :class:`~fastmatch.MatchPolicy` its
    annotations ask for (read once, when the request is made); ``workload``:
    the workload it is a replica of (``Deployment web``), or ``""``.

    >>> req = PodRequest(["nginx:1.14.2"], {"k8s.aliyun.com/imc-perfect-match": "true"},
    ...                  name="web-0")
    >>> req.images[0].ref, req.policy.perfect_match
    ('docker.io/library/nginx:1.14.2', True)
    """

    __slots__ = ()

    def __init__(
        self,
        images: Iterable[Image | str],
        annotations: Mapping[str, str] | None = None,
        *,
        name: str = "",
        namespace: str = "",
        storage_gib: float | None = None,
        arch: str | None = None,
        os: str | None = None,
        workload: str = "",
    ) -> None:
        where = f"pod {name}" if name else "pod"
        for field, value in (("name", name), ("namespace", namespace), ("workload", workload)):
            if not isinstance(value, str):
                raise ValidationError(f"{where}: {field} must be a string, got {value!r}")
        pod = distinct_images(images, where)
        if not pod:
            raise ValidationError(f"{where}: a pod needs at least one image")
        if annotations is None:
            annotations = _EMPTY
        elif not isinstance(annotations, Mapping):
            raise ValidationError(f"{where}: annotations must be a mapping, got {annotations!r}")
        else:
            annotations = dict(annotations)
        arch, os = normalize_arch(arch), normalize_os(os)
        policy = MatchPolicy.from_annotations(annotations, storage_gib=storage_gib,
                                              arch=arch, os=os)
        shared = _Shared(pod, annotations, namespace, storage_gib, arch, os, policy, workload)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_shared", shared)

    # The replicas' common part, read through: a replica is its name and this.

    @property
    def images(self) -> tuple[Image, ...]:
        """The pod's distinct images."""
        return self._shared.images

    @property
    def annotations(self) -> Mapping[str, str]:
        """Its annotations (ECI's among them)."""
        return self._shared.annotations

    @property
    def namespace(self) -> str:
        """Its namespace."""
        return self._shared.namespace

    @property
    def storage_gib(self) -> float | None:
        """The storage limit candidates must fit, or ``None``."""
        return self._shared.storage_gib

    @property
    def arch(self) -> str | None:
        """Its CPU architecture (containerd's spelling), or ``None``."""
        return self._shared.arch

    @property
    def os(self) -> str | None:
        """Its operating system, or ``None``."""
        return self._shared.os

    @property
    def policy(self) -> MatchPolicy:
        """The :class:`~fastmatch.MatchPolicy` its annotations ask for."""
        return self._shared.policy

    @property
    def workload(self) -> str:
        """The workload it is a replica of (``Deployment web``), or ``""``."""
        return self._shared.workload

    @classmethod
    def from_object(
        cls,
        obj: Mapping[str, Any],
        *,
        catalog: LayerSource | None = None,
        profile: EciProfile | None = None,
        namespace_labels: Mapping[str, str] | None = None,
    ) -> PodRequest:
        """The request of a ``Pod`` object (an admission request's, a file's) or of a pod
        template's dict (``{"metadata": ..., "spec": ...}``).

        ``catalog`` (any layer source) gives the images' layers; ``profile``
        applies the eci-profile with the namespace's ``namespace_labels``.
        Bad input raises :class:`~fastmatch.errors.InputFileError` naming the
        object and the field.
        """
        if not isinstance(obj, Mapping):
            raise InputFileError(f"pod: expected an object, got {type(obj).__name__}")
        kind = obj.get("kind")
        if kind not in (None, "Pod"):
            raise InputFileError(
                f"{label(obj)}: not a Pod (read workloads with fastmatch.read_pods or "
                "fastmatch.inputs.pod_requests)"
            )
        try:
            return _pod(obj, "", ImageReader(catalog), profile, namespace_labels)
        except FieldError as exc:
            raise InputFileError(f"{label(obj)}: {exc}") from None

    def renamed(self, name: str) -> PodRequest:
        """The same request for another pod (a replica): shares images and policy."""
        return _request(name, self._shared)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"PodRequest is immutable: cannot assign to {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PodRequest):
            return NotImplemented
        return self.name == other.name and self._shared == other._shared

    def __hash__(self) -> int:
        return hash((self.images, self.name, self.namespace, self.workload))

    def __repr__(self) -> str:
        refs = [image.ref for image in self.images]
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"PodRequest({where!r}, images={refs!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_request, (self.name, self._shared))


# -- reading ------------------------------------------------------------------


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON and YAML give: no ABC check
        return value
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        field_error(field, f"expected an object, got {type(value).__name__}")
    return value


def _strings(value: object, field: str) -> Mapping[str, str]:
    found = _mapping(value, field)
    for key, item in found.items():
        if not isinstance(item, str):
            field_error(f"{field}[{key}]" if isinstance(key, str) else field,
                        f"expected a string value, got {item!r}")
    return found


def _plain_strings(value: object) -> bool:
    """Whether ``value`` is what :func:`_strings` passes as it is, told in one C pass (the
    field is named, and the message worded, only for a value that is not)."""
    return value is None or (type(value) is dict and (
        not value or set(map(type, value.values())) == _STR))


_STR = {str}


def _images(spec: Mapping[str, Any], path: str, reader: ImageReader,
            platform: str | None) -> tuple[Image, ...]:
    images: list[Image] = []
    seen: set[int] = set()
    for group in ("initContainers", "containers"):
        containers = spec.get(group)
        if containers is None:
            continue
        if type(containers) is not list:
            field_error(f"{path}spec.{group}", "expected a list of containers")
        for i, container in enumerate(containers):
            if type(container) is not dict and not isinstance(container, Mapping):
                field_error(f"{path}spec.{group}[{i}]", "expected a container object")
            image = reader.image(container.get("image"), f"{path}spec.{group}[{i}].image",
                                 platform)
            if id(image) not in seen:  # the reader gives one object per reference
                seen.add(id(image))
                images.append(image)
    if not images:
        field_error(f"{path}spec.containers", "the pod has no containers")
    return tuple(images)


def _platform(selector: Mapping[str, str], path: str) -> tuple[str | None, str | None]:
    if not selector:
        return None, None
    arch = next((selector[k] for k in _ARCH_KEYS if k in selector), None)
    os_ = next((selector[k] for k in _OS_KEYS if k in selector), None)
    try:
        return normalize_arch(arch), normalize_os(os_)
    except FastmatchError as exc:
        field_error(f"{path}spec.nodeSelector", str(exc))


def _pod(
    template: Mapping[str, Any],
    path: str,
    reader: ImageReader,
    profile: EciProfile | None,
    namespace_labels: Mapping[str, str] | None,
    *,
    namespace: str = "",
    name: str = "",
    workload: str = "",
) -> PodRequest:
    """The request of a pod (``path`` ``""``) or a pod template at ``path``
    (``spec.template.``)."""
    meta = template.get("metadata")
    if type(meta) is not dict:
        meta = _mapping(meta, f"{path}metadata")
    spec = template.get("spec")
    if type(spec) is not dict:
        spec = _mapping(spec, f"{path}spec")
    if not name:
        raw = meta.get("name") or meta.get("generateName") or ""
        if not isinstance(raw, str):
            field_error(f"{path}metadata.name", f"expected a string, got {raw!r}")
        name = raw
    if not namespace:
        raw_ns = meta.get("namespace") or "default"
        if not isinstance(raw_ns, str):
            field_error(f"{path}metadata.namespace", f"expected a string, got {raw_ns!r}")
        namespace = raw_ns
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = _EMPTY
    elif not _plain_strings(annotations):
        annotations = _strings(annotations, f"{path}metadata.annotations")
    if profile is not None:
        labels = _strings(meta.get("labels"), f"{path}metadata.labels")
        shaped = {"metadata": {"labels": labels, "annotations": annotations,
                               "namespace": namespace}}
        if namespace_labels is None:  # the label the API server puts on every namespace
            namespace_labels = {NAMESPACE_NAME_LABEL: namespace}
        annotations = profile.annotations_for(shaped, namespace_labels)
    selector = spec.get("nodeSelector")
    if selector:
        arch, os_ = _platform(_strings(selector, f"{path}spec.nodeSelector"), path)
    else:
        arch = os_ = None
        if selector is not None:  # an empty one, or one of the wrong type: named
            _strings(selector, f"{path}spec.nodeSelector")
    platform = f"{os_ or 'linux'}/{arch}" if arch is not None else None
    images = _images(spec, path, reader, platform)
    try:
        policy = _policy(tuple(map(annotations.get, ANNOTATIONS)), arch, os_)
    except FastmatchError as exc:
        field_error(f"{path}metadata.annotations", str(exc))
    return _request(
        name, _Shared(images, dict(annotations), namespace, None, arch, os_, policy, workload)
    )


@functools.lru_cache(maxsize=4096)
def _policy(values: tuple[str | None, ...], arch: str | None, os: str | None) -> MatchPolicy:
    # Workloads of a cluster ask in a few ways: one policy object for each way
    # (cheaper to read, and match_many groups pods that share it).
    annotations = {key: value for key, value in zip(ANNOTATIONS, values) if value is not None}
    return MatchPolicy.from_annotations(annotations, arch=arch, os=os)


def _replicas(spec: Mapping[str, Any]) -> int:
    value = spec.get("replicas", 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        field_error("spec.replicas", f"expected an integer, got {value!r}")
    if not 0 <= value <= _MAX_REPLICAS:
        field_error("spec.replicas", f"expected 0 to {_MAX_REPLICAS:,}, got {value}")
    return value


# A workload's pods as one run: its first request, how many pods, and the stem the
# others are named from (``<stem>-1``...), or ``None`` for a kind that makes one pod.
_Run = tuple["PodRequest", int, "str | None"]


def _run(
    obj: Mapping[str, Any],
    reader: ImageReader,
    profile: EciProfile | None,
    namespaces: Mapping[str, Mapping[str, str]] | None,
) -> _Run | None:
    """The pods of one object as a run (a count of 0: none), or ``None`` for a kind that
    is not a pod or workload."""
    kind = obj.get("kind")
    if kind == "Pod":
        ns = _namespace(obj)
        return _pod(obj, "", reader, profile, _labels_of(namespaces, ns)), 1, None
    if kind not in REPLICATED_KINDS and kind not in SINGLE_KINDS:
        return None
    meta = _mapping(obj.get("metadata"), "metadata")
    name = meta.get("name") or meta.get("generateName")
    if not isinstance(name, str) or not name:
        field_error("metadata.name", "missing")
    ns = _namespace(obj)
    spec = _mapping(obj.get("spec"), "spec")
    path = "spec.template."
    if kind == "CronJob":
        job = _mapping(spec.get("jobTemplate"), "spec.jobTemplate")
        spec, path = _mapping(job.get("spec"), "spec.jobTemplate.spec"), path.replace(
            "spec.", "spec.jobTemplate.spec.", 1)
    template = obj.get("template") if kind == "PodTemplate" else spec.get("template")
    if kind == "PodTemplate":
        path = "template."
    if not isinstance(template, Mapping):
        field_error(path.rstrip("."), "missing pod template")
    replicated = kind in REPLICATED_KINDS
    count = _replicas(spec) if replicated else 1
    if count == 0:
        return None
    first = _pod(template, path, reader, profile, _labels_of(namespaces, ns),
                 namespace=ns, name=f"{name}-0" if replicated else name,
                 workload=f"{kind} {name}")
    return first, count, name if replicated else None


class PodRequests(Sequence[PodRequest]):
    """Pods as a reader gives them, one per replica in input order, kept as runs: each
    workload's first request and how many replicas follow it, so that a cluster's
    million pods cost their workloads' objects, not one object per replica.

    A sequence of :class:`PodRequest` (indexing, slicing, iterating and comparing as a
    list does); a replica's request is made when it is asked for: the workload's
    images, policy and annotations objects, under its own name (``web-7``).
    :meth:`runs` hands a caller that works per workload the runs themselves.
    """

    __slots__ = ("_ends", "_runs")

    def __init__(self, runs: Iterable[_Run] = ()) -> None:
        self._runs: list[_Run] = []
        self._ends: list[int] = []  # the index one past each run's last pod
        total = 0
        for run in runs:
            if run[1] > 0:
                total += run[1]
                self._runs.append(run)
                self._ends.append(total)

    @classmethod
    def _of(cls, runs: list[_Run], ends: list[int]) -> PodRequests:
        """The requests of these runs (none empty) and their ends, as they are."""
        requests = cls.__new__(cls)
        requests._runs = runs
        requests._ends = ends
        return requests

    def runs(self) -> list[tuple[PodRequest, int]]:
        """Each workload's first request and its number of pods, in order."""
        return [(first, count) for first, count, _ in self._runs]

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def _at(self, i: int) -> PodRequest:
        r = bisect.bisect_right(self._ends, i)
        first, count, stem = self._runs[r]
        k = i - (self._ends[r] - count)
        return first if k == 0 else first.renamed(f"{stem}-{k}")

    @overload
    def __getitem__(self, i: int) -> PodRequest: ...
    @overload
    def __getitem__(self, i: slice) -> list[PodRequest]: ...

    def __getitem__(self, i: int | slice) -> PodRequest | list[PodRequest]:
        n = len(self)
        if isinstance(i, slice):
            return [self._at(k) for k in range(*i.indices(n))]
        k = operator.index(i)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("PodRequests index out of range")
        return self._at(k)

    def __iter__(self) -> Iterator[PodRequest]:
        for first, count, stem in self._runs:
            yield first
            for k in range(1, count):
                yield first.renamed(f"{stem}-{k}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (PodRequests, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # as a list's: compared by value, mutable

    def __repr__(self) -> str:
        return f"PodRequests({len(self)} pods in {len(self._runs)} runs)"


def replica_runs(requests: Iterable[PodRequest]) -> list[tuple[PodRequest, int]]:
    """The requests as runs of replicas: each run's first request and how many
    consecutive requests share its images and policy objects (a workload's replicas, as
    the readers give them), so that a caller handles a workload once, not per replica."""
    if isinstance(requests, PodRequests):
        return requests.runs()
    runs: list[tuple[PodRequest, int]] = []
    first: PodRequest | None = None
    shared: object = None
    count = 0
    for request in requests:
        if request._shared is shared:
            count += 1
            continue
        if first is not None:
            runs.append((first, count))
        first, shared, count = request, request._shared, 1
    if first is not None:
        runs.append((first, count))
    return runs


def workload_lists(
    requests: Iterable[PodRequest],
) -> tuple[list[list[Image]], list[MatchPolicy], list[int], list[str]]:
    """The requests as ``match_many`` takes them per workload, with ``replicas``: each
    run's images, policy, number of pods and first pod's name.  Workloads of the same
    images share one list (a reader gives one image object per reference), so that
    ``match_many`` scores them once when they share their policy object too."""
    if isinstance(requests, PodRequests):
        return _PLAIN.lists(requests._runs)
    pods: list[list[Image]] = []
    policies: list[MatchPolicy] = []
    counts: list[int] = []
    names: list[str] = []
    lists: dict[tuple[int, ...], list[Image]] = {}
    for first, count in replica_runs(requests):
        images = first.images
        key = tuple(map(id, images))  # the objects live in ``images``: ids are not reused
        shared = lists.get(key)
        if shared is None:
            shared = lists[key] = list(images)
        pods.append(shared)
        policies.append(first.policy)
        counts.append(count)
        names.append(first.name)
    return pods, policies, counts, names


def match_lists(
    requests: Iterable[PodRequest],
) -> tuple[list[list[Image]], list[MatchPolicy]]:
    """Each pod's images as a list and its policy, as ``match_many`` takes them: one list
    per image tuple, shared by the pods that share it (a workload's replicas), so that
    ``match_many`` copies nothing per pod and scores a workload once.  One step per
    workload, not per replica."""
    pods: list[list[Image]] = []
    policies: list[MatchPolicy] = []
    for images, policy, count, _ in zip(*workload_lists(requests)):
        pods += [images] * count
        policies += [policy] * count
    return pods, policies


def _namespace(obj: Mapping[str, Any]) -> str:
    meta = _mapping(obj.get("metadata"), "metadata")
    ns = meta.get("namespace") or "default"
    if not isinstance(ns, str):
        field_error("metadata.namespace", f"expected a string, got {ns!r}")
    return ns


def _labels_of(
    namespaces: Mapping[str, Mapping[str, str]] | None, name: str
) -> Mapping[str, str] | None:
    return namespaces.get(name) if namespaces is not None else None


def pod_requests(
    obj: Mapping[str, Any],
    *,
    catalog: LayerSource | None = None,
    profile: EciProfile | None = None,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    where: str | None = None,
) -> list[PodRequest]:
    """The requests of one object: a Pod gives one, a workload one per replica, any
    other kind none.  ``namespaces`` maps a namespace's name to its labels, for the
    eci-profile's ``namespaceSelector``."""
    if not isinstance(obj, Mapping):
        raise InputFileError(f"{where or 'object'}: expected an object, got "
                             f"{type(obj).__name__}")
    try:
        run = _run(obj, ImageReader(catalog), profile, namespaces)
    except FieldError as exc:
        raise InputFileError(f"{where or label(obj)}: {exc}") from None
    return list(PodRequests([run] if run is not None else []))


def requests_from(
    found: Iterable[Located],
    reader: ImageReader,
    profile: EciProfile | None = None,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
) -> PodRequests:
    """The requests of objects read from files (other kinds skipped), in order, as runs
    of replicas (one object per workload, each replica's made when asked for)."""

    def careful(located: Located) -> _Run | None:
        obj = located.obj
        assert type(obj) is dict or isinstance(obj, Mapping)
        try:
            return _run(obj, reader, profile, namespaces)
        except FieldError as exc:
            raise located.error(exc) from None

    if profile is not None:  # the eci-profile's annotations: the careful reader's alone
        return PodRequests(run for run in map(careful, found) if run is not None)
    return PodRequests._of(*_PLAIN.runs(found, reader.image, careful))


# Plain objects (most of a cluster's) read in C, into what the careful reader above makes.
_PLAIN = PlainWorkloads(_Shared, PodRequest, _Fields, _policy, REPLICATED_KINDS, SINGLE_KINDS,
                        _MAX_REPLICAS)


def read_pods(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    catalog: LayerSource | None = None,
    profile: EciProfile | None = None,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
) -> list[PodRequest]:
    """Every pod in ``paths`` (SPEC §6, §8): Pods and workloads, one request per replica,
    in input order; other kinds are skipped.

    ``catalog`` (any layer source) gives the images' layers (an image it does
    not know is kept by reference); ``profile`` applies the eci-profile, with
    ``namespaces`` (a namespace's name to its labels).  All or nothing: bad
    input raises :class:`~fastmatch.errors.InputFileError` naming the file,
    the document and the field.
    """
    with bulk():
        return list(requests_from(read_objects(paths), ImageReader(catalog), profile,
                                  namespaces))
