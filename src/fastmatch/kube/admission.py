"""The admission decision: an ``AdmissionReview`` in, the answer out (SPEC §10).

No I/O here: :func:`parse_review` checks a request body, :func:`admit` decides a
pod through a :class:`PodDecider` (the cluster index, or anything with its face)
and returns an :class:`Admission`: the ``AdmissionReview`` to send back, what
to count, and the ImageCache to create, if any, which the caller hands to the
background creator (:mod:`fastmatch.kube.autocreate`) unless the request is a
dry run.

The patch only ever adds: ``metadata.annotations`` when the pod has none,
``k8s.aliyun.com/eci-imc-id`` on an automatic choice, and
``fastmatch.io/decision``.  A key the pod set is never replaced, and a pod that
already carries fastmatch's decision is left as it is, so the webhook may be
called again on the same pod (``reinvocationPolicy: IfNeeded``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fastmatch.errors import FastmatchError
from fastmatch.imageref import parse_reference
from fastmatch.index import CacheIndex
from fastmatch.inputs.caches import MANAGED_BY
from fastmatch.inputs.source import LayerSource
from fastmatch.model import PROPOSAL_PREFIX, CreateProposal, dns_name
from fastmatch.result import MatchResult

__all__ = [
    "API_VERSION",
    "CACHE_ANNOTATION",
    "DECISION_ANNOTATION",
    "IMAGECACHE_API",
    "MAX_WARNING",
    "Admission",
    "AdmissionError",
    "Outcome",
    "PodDecider",
    "Review",
    "admit",
    "allowed",
    "cache_object",
    "cache_object_name",
    "escape_pointer",
    "parse_review",
]

API_VERSION = "admission.k8s.io/v1"
IMAGECACHE_API = "eci.alibabacloud.com/v1"
CACHE_ANNOTATION = "k8s.aliyun.com/eci-imc-id"
_LEGACY_CACHE_ANNOTATION = "k8s.aliyun.com/eci-image-snapshot-id"
DECISION_ANNOTATION = "fastmatch.io/decision"
PROPOSED_FOR_ANNOTATION = "fastmatch.io/proposed-for"
# The API server cuts warnings over 256 characters; the Kubernetes docs ask for
# under 120 so that kubectl prints them on one line.
MAX_WARNING = 119
_MAX_IMAGES = 20  # a cache holds at most 20 images (ECI)
_MAX_UNRESOLVED_WARNINGS = 3  # a pod of many unknown images gets a few lines, not dozens

# What the webhook did with one request, as fastmatch_admission_requests_total counts it.
Outcome = Literal[
    "patched",  # a decision added to the pod
    "denied",  # a named cache ECI would refuse
    "unchanged",  # fastmatch's decision already on the pod (a reinvocation)
    "skipped",  # not a pod CREATE
    "not_ready",  # before the first sync: admitted unchanged
    "over_budget",  # no decision in time: admitted unchanged
    "error",  # the pod could not be decided: admitted unchanged
]


class AdmissionError(FastmatchError):
    """A request body the webhook cannot answer: the HTTP status to send (400, or 413
    for a body over the limit) and a message saying what is wrong."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class PodDecider(Protocol):
    """What the webhook needs of the cluster: the face of
    :class:`fastmatch.kube.ClusterIndex` (SPEC §10)."""

    @property
    def ready(self) -> bool:
        """Whether the first full sync is applied."""
        ...

    @property
    def index(self) -> CacheIndex:
        """The caches of the cluster."""
        ...

    def match_pod(
        self, pod_obj: Mapping[str, Any], *, namespace_labels: Mapping[str, str] | None = None
    ) -> MatchResult:
        """The decision for a Pod object, the eci-profile applied."""
        ...

    def stats(self) -> Mapping[str, Any]:
        """The sync's numbers (events applied, relists, lag, caches...)."""
        ...


@dataclass(frozen=True, slots=True)
class Review:
    """An ``AdmissionReview`` request that :func:`parse_review` accepted: its ``uid``
    and the ``request`` object as the API server sent it."""

    uid: str
    request: Mapping[str, Any]

    @property
    def dry_run(self) -> bool:
        """Whether the request is a dry run (no side effects allowed)."""
        return self.request.get("dryRun") is True


@dataclass(slots=True)
class Admission:
    """The webhook's answer to one review.

    ``review``: the ``AdmissionReview`` to send back (HTTP 200); ``outcome``:
    what happened (:data:`Outcome`); ``result``: the decision, when one was
    made; ``create``: the ImageCache object to create (never on a dry run);
    ``error``: why the pod could not be decided, for the log.
    """

    review: dict[str, Any]
    outcome: Outcome
    result: MatchResult | None = None
    create: dict[str, Any] | None = None
    error: str | None = field(default=None)


def parse_review(body: bytes) -> Review:
    """The request of an ``admission.k8s.io/v1`` ``AdmissionReview`` body; raise
    :class:`AdmissionError` (HTTP 400) saying what is wrong with any other body."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise AdmissionError(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AdmissionError(f"expected an AdmissionReview object, got JSON {type(doc).__name__}")
    kind = doc.get("kind")
    if kind != "AdmissionReview":
        raise AdmissionError(f"kind: expected AdmissionReview, got {kind!r}")
    version = doc.get("apiVersion")
    if version != API_VERSION:
        raise AdmissionError(
            f"apiVersion: expected {API_VERSION} (the only version served; list it in "
            f"admissionReviewVersions), got {version!r}"
        )
    request = doc.get("request")
    if not isinstance(request, dict):
        raise AdmissionError("request: missing, or not an object" if request is None
                             else f"request: expected an object, got {type(request).__name__}")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise AdmissionError("request.uid: missing or empty" if not uid
                             else f"request.uid: expected a string, got {uid!r}")
    return Review(uid, request)


def _warning(text: str) -> str:
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 3] + "..."


def allowed(
    review: Review,
    *,
    patch: Sequence[Mapping[str, Any]] = (),
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``AdmissionReview`` that admits the pod, with ``patch`` (a JSON Patch) when it
    is not empty, and ``warnings`` (each cut to :data:`MAX_WARNING` characters)."""
    response: dict[str, Any] = {"uid": review.uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(list(patch), separators=(",", ":")).encode()
        ).decode("ascii")
    if warnings:
        response["warnings"] = [_warning(w) for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _denied(review: Review, message: str, warnings: Sequence[str]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "uid": review.uid,
        "allowed": False,
        "status": {"status": "Failure", "code": 400, "reason": "BadRequest",
                   "message": message},
    }
    if warnings:
        response["warnings"] = [_warning(w) for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def escape_pointer(key: str) -> str:
    """``key`` as one JSON Pointer token (RFC 6901): ``~`` as ``~0``, ``/`` as ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")


def cache_object_name(proposal: CreateProposal) -> str:
    """The ImageCache name for a proposal: ``auto-create-for-`` and a DNS-safe name made
    from its image set alone (the first image's repository and a hash of every image),
    so that every replica and every webhook process names the same set the same way,
    and a second creation gets 409."""
    keys = sorted({image.digest or image.ref for image in proposal.images})
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    first = min(image.ref for image in proposal.images)
    repository = parse_reference(first).path.rsplit("/", 1)[-1]
    stem = dns_name(repository, "images")[:30].strip(".-") or "images"
    return f"{PROPOSAL_PREFIX}{stem}-{digest}"


def cache_object(proposal: CreateProposal, pod: str) -> dict[str, Any]:
    """The ``ImageCache`` object (``eci.alibabacloud.com/v1``) the webhook creates for a
    proposal: named by :func:`cache_object_name`, labelled as fastmatch's, annotated
    with the pod ``namespace/name`` that proposed it."""
    return {
        "apiVersion": IMAGECACHE_API,
        "kind": "ImageCache",
        "metadata": {
            "name": cache_object_name(proposal),
            "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
            "annotations": {PROPOSED_FOR_ANNOTATION: pod},
        },
        "spec": {
            "images": [image.ref for image in proposal.images],
            "imageCacheSize": proposal.size_gib,
        },
    }


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for group in ("initContainers", "containers"):
        items = spec.get(group)
        if isinstance(items, list):
            found.extend(c for c in items if isinstance(c, Mapping))
    return found


def _warnings(
    result: MatchResult,
    spec: Mapping[str, Any],
    layers: LayerSource | None,
) -> list[str]:
    warnings: list[str] = []
    containers = _containers(spec)
    always = [str(c.get("name", "?")) for c in containers if c.get("imagePullPolicy") == "Always"]
    if always:  # one line for them all: warnings past 4 KiB in total are dropped
        who = f"container {always[0]}" if len(always) == 1 else f"{len(always)} containers"
        warnings.append(f"{who}: imagePullPolicy Always pulls images even from a cache; "
                        "ECI asks for IfNotPresent")
    if result.images > _MAX_IMAGES and result.outcome != "reject":
        warnings.append(
            f"the pod has {result.images} images, more than a cache holds ({_MAX_IMAGES}): "
            "no cache can hold them all"
        )
    if layers is not None:
        unknown: list[str] = []
        for c in containers:
            ref = c.get("image")
            if not isinstance(ref, str) or ref in unknown:
                continue
            try:
                known = layers.get(ref) is not None
            except FastmatchError:  # a source that cannot tell now: as unknown
                known = False
            if not known:
                unknown.append(ref)
        for ref in unknown[:_MAX_UNRESOLVED_WARNINGS]:
            warnings.append(f"image {ref} could not be resolved to layers: matched by reference")
    # The decision says so in its reason: no proposal while a cache for the same
    # images is being built (SPEC §3.7).
    if result.create is None and "is already being created" in result.reason:
        warnings.append("a cache for this pod's images is being built: the pod starts "
                        "without it")
    return warnings


def _is_pod_create(request: Mapping[str, Any]) -> bool:
    """Whether the request creates a pod: its ``resource`` (what the API server always
    sends) says pods, no subresource, else its ``kind`` or its object's says Pod; and
    its ``operation`` is CREATE (a request without one is read as a CREATE)."""
    if request.get("operation", "CREATE") != "CREATE" or request.get("subResource"):
        return False
    resource = request.get("resource")
    if isinstance(resource, Mapping):
        return resource.get("resource") == "pods" and resource.get("group", "") == ""
    kind = request.get("kind")
    if isinstance(kind, Mapping):
        return kind.get("kind") == "Pod" and kind.get("group", "") == ""
    obj = request.get("object")
    return isinstance(obj, Mapping) and obj.get("kind", "Pod") == "Pod"


def _pod_name(meta: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    name = meta.get("name") or request.get("name")
    if isinstance(name, str) and name:
        return name
    prefix = meta.get("generateName")
    if isinstance(prefix, str) and prefix:
        # No name yet at admission: the prefix names the pod, without its dash.
        return dns_name(prefix)
    return "pod"


def _patch(meta: object, adds: dict[str, str]) -> list[dict[str, Any]]:
    if not isinstance(meta, Mapping):
        return [{"op": "add", "path": "/metadata", "value": {"annotations": adds}}]
    if not isinstance(meta.get("annotations"), Mapping):
        return [{"op": "add", "path": "/metadata/annotations", "value": adds}]
    return [
        {"op": "add", "path": f"/metadata/annotations/{escape_pointer(key)}", "value": value}
        for key, value in adds.items()
    ]


def admit(
    review: Review,
    decider: PodDecider,
    *,
    layers: LayerSource | None = None,
) -> Admission:
    """Decide the pod of ``review`` through ``decider`` and answer (SPEC §10).

    A request for anything but a pod CREATE, a pod fastmatch already decided,
    or an index not synced yet are admitted unchanged; a named cache ECI would
    refuse is denied (HTTP 200, ``allowed: false``, ``status.code`` 400); any
    other pod is admitted with a patch holding the decision.  ``layers`` (the
    catalog the webhook was given) lets it warn of images it cannot resolve.
    A pod that cannot be decided (a bad annotation, an invalid image) is
    admitted unchanged with a warning: the webhook is never why a pod is not
    created.  Raise :class:`AdmissionError` when ``request`` lacks the pod.
    """
    request = review.request
    if not _is_pod_create(request):
        return Admission(allowed(review), "skipped")
    obj = request.get("object")
    if not isinstance(obj, Mapping):
        raise AdmissionError("request.object: expected the Pod being created")
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    annotations = meta.get("annotations")
    annotations = annotations if isinstance(annotations, Mapping) else {}
    if DECISION_ANNOTATION in annotations:
        return Admission(allowed(review), "unchanged")
    if not decider.ready:
        return Admission(
            allowed(review, warnings=["fastmatch: the image caches are not synced yet; "
                                      "the pod is admitted unchanged"]),
            "not_ready",
        )
    name = _pod_name(meta, request)
    namespace = request.get("namespace") or meta.get("namespace") or "default"
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    pod = {**obj, "metadata": {**meta, "name": name, "namespace": namespace}}
    try:
        result = decider.match_pod(pod)
    except FastmatchError as exc:
        return Admission(
            allowed(review, warnings=[f"fastmatch: no decision: {exc}"]), "error",
            error=str(exc),
        )
    warnings = _warnings(result, spec, layers)
    if result.outcome == "reject":
        return Admission(_denied(review, result.reason, warnings), "denied", result)
    adds: dict[str, str] = {}
    if (result.outcome == "use" and not result.named and CACHE_ANNOTATION not in annotations
            and _LEGACY_CACHE_ANNOTATION not in annotations):
        assert result.cache_id is not None
        adds[CACHE_ANNOTATION] = result.cache_id
    decision = {"namespace": namespace, "name": name, **result.as_dict()}
    adds[DECISION_ANNOTATION] = json.dumps(decision, separators=(",", ":"))
    create = None
    if result.create is not None and not review.dry_run:
        create = cache_object(result.create, f"{namespace}/{name}")
    return Admission(
        allowed(review, patch=_patch(obj.get("metadata"), adds), warnings=warnings),
        "patched", result, create,
    )
