"""Image references from files, for ``fastmatch resolve --from-file``.

The files are read by the inputs' one walker (:func:`fastmatch.inputs.read_objects`:
YAML and JSON documents, Lists, directories, standard input); this module only
picks out the references and pull secrets.

Understood, in YAML (several documents) or JSON (an object, a ``List``, an array):

- ``Pod`` and the workloads with a pod template (``Deployment``,
  ``StatefulSet``, ``DaemonSet``, ``ReplicaSet``, ``ReplicationController``,
  ``Job``, ``CronJob``, ``PodTemplate``): init and regular containers, and
  the pod's ``imagePullSecrets``;
- ECI ``ImageCache`` objects: ``spec.images`` and ``spec.imagePullSecrets``;
- the JSON of ECI's ``DescribeImageCaches``: ``ImageCaches[].Images``;
- ``Secret`` objects of type ``kubernetes.io/dockerconfigjson`` (or
  ``dockercfg``), kept as credentials.

Other kinds (a Service in the same bundle) are skipped.  A bad reference or
a container without an image is an error naming the file, the object and the
field; nothing is returned half-read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastmatch.errors import FastmatchError, InputFileError
from fastmatch.imageref import parse_reference
from fastmatch.inputs.documents import read_objects, read_stdin

__all__ = ["FileReferences", "read_references", "read_stdin"]  # read_stdin: from the inputs

_TEMPLATE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
)
_SECRET_TYPES = frozenset({"kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"})



@dataclass(slots=True)
class FileReferences:
    """What the files named: references (distinct, in first-seen order) with where each
    was seen, pull-secret names (``namespace/name``) and the pull secrets found."""

    references: list[str] = field(default_factory=list)
    origins: dict[str, list[str]] = field(default_factory=dict)
    pull_secret_names: list[str] = field(default_factory=list)
    secrets: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)

    def add_reference(self, ref: str, where: str) -> None:
        """Record ``ref``, seen at ``where``."""
        if ref not in self.origins:
            self.references.append(ref)
            self.origins[ref] = []
        self.origins[ref].append(where)

    def add_secret_name(self, name: str) -> None:
        """Record a pull secret a pod or cache names."""
        if name not in self.pull_secret_names:
            self.pull_secret_names.append(name)


def read_references(paths: Iterable[str | os.PathLike[str]]) -> FileReferences:
    """Read every file of ``paths`` (``-`` is standard input) into one
    :class:`FileReferences`."""
    found = FileReferences()
    for located in read_objects(list(paths)):
        _visit(located.obj, located.where, found)
    return found


def _namespace(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    return ns if isinstance(ns, str) and ns else "default"


def _visit(doc: object, where: str, found: FileReferences) -> None:
    if not isinstance(doc, Mapping):
        raise InputFileError(f"{where}: expected an object, got {type(doc).__name__}")
    if "ImageCaches" in doc or (isinstance(doc.get("body"), Mapping)
                                and "ImageCaches" in doc["body"]):
        _describe_image_caches(doc.get("ImageCaches", doc.get("body")), where, found)
        return
    kind = doc.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise InputFileError(f"{where}: field 'kind': expected a string, got {kind!r}")
    obj = where
    spec = doc.get("spec")
    if kind == "Pod":
        _pod_spec(spec, "spec", obj, _namespace(doc), found)
    elif kind in _TEMPLATE_KINDS:
        _pod_spec(_dig(doc, ("spec", "template", "spec"), obj), "spec.template.spec", obj,
                  _namespace(doc), found)
    elif kind == "CronJob":
        path = ("spec", "jobTemplate", "spec", "template", "spec")
        _pod_spec(_dig(doc, path, obj), ".".join(path), obj, _namespace(doc), found)
    elif kind == "PodTemplate":
        _pod_spec(_dig(doc, ("template", "spec"), obj), "template.spec", obj,
                  _namespace(doc), found)
    elif kind == "ImageCache":
        _image_cache(spec, obj, found)
    elif kind == "Secret" and isinstance(doc.get("type"), str) and doc["type"] in _SECRET_TYPES:
        found.secrets.append((doc, where))


def _dig(doc: Mapping[str, Any], path: tuple[str, ...], obj: str) -> object:
    value: object = doc
    for i, key in enumerate(path):
        if not isinstance(value, Mapping) or key not in value:
            raise InputFileError(f"{obj}: field {'.'.join(path[: i + 1])!r} is missing")
        value = value[key]
    return value


def _check_ref(value: object, field_name: str, obj: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputFileError(f"{obj}: field {field_name!r}: expected an image reference, "
                             f"got {value!r}")
    try:
        parse_reference(value)
    except FastmatchError as exc:
        raise InputFileError(f"{obj}: field {field_name!r}: {exc}") from None
    return value


def _pod_spec(spec: object, path: str, obj: str, namespace: str, found: FileReferences) -> None:
    if not isinstance(spec, Mapping):
        raise InputFileError(f"{obj}: field {path!r}: expected an object")
    for group in ("initContainers", "containers"):
        containers = spec.get(group) or []
        if not isinstance(containers, list):
            raise InputFileError(f"{obj}: field '{path}.{group}': expected a list")
        for i, container in enumerate(containers):
            name = f"{path}.{group}[{i}]"
            if not isinstance(container, Mapping):
                raise InputFileError(f"{obj}: field {name!r}: expected an object")
            ref = _check_ref(container.get("image"), f"{name}.image", obj)
            found.add_reference(ref, f"{obj} {name}.image")
    secrets = spec.get("imagePullSecrets") or []
    if not isinstance(secrets, list):
        raise InputFileError(f"{obj}: field '{path}.imagePullSecrets': expected a list")
    for secret in secrets:
        if isinstance(secret, Mapping) and isinstance(secret.get("name"), str):
            found.add_secret_name(f"{namespace}/{secret['name']}")


def _image_cache(spec: object, obj: str, found: FileReferences) -> None:
    if not isinstance(spec, Mapping):
        raise InputFileError(f"{obj}: field 'spec': expected an object")
    images = spec.get("images")
    if not isinstance(images, list) or not images:
        raise InputFileError(f"{obj}: field 'spec.images': expected a non-empty list")
    for i, image in enumerate(images):
        ref = _check_ref(image, f"spec.images[{i}]", obj)
        found.add_reference(ref, f"{obj} spec.images[{i}]")
    secrets = spec.get("imagePullSecrets") or []
    if not isinstance(secrets, list):
        raise InputFileError(f"{obj}: field 'spec.imagePullSecrets': expected a list")
    for secret in secrets:
        # ECI writes "namespace:name"; a bare name is in "default".
        if isinstance(secret, Mapping):
            secret = secret.get("name")
        if isinstance(secret, str) and secret:
            ns, sep, name = secret.partition(":")
            found.add_secret_name(f"{ns}/{name}" if sep else f"default/{secret}")


def _describe_image_caches(caches: object, where: str, found: FileReferences) -> None:
    if isinstance(caches, Mapping):
        caches = caches.get("ImageCaches")
    if not isinstance(caches, list):
        raise InputFileError(f"{where}: field 'ImageCaches': expected a list")
    for i, cache in enumerate(caches):
        if not isinstance(cache, Mapping):
            raise InputFileError(f"{where}: ImageCaches[{i}]: expected an object")
        obj = f"{where}: image cache {cache.get('ImageCacheId') or f'ImageCaches[{i}]'}"
        images = cache.get("Images")
        if not isinstance(images, list) or not images:
            raise InputFileError(f"{obj}: field 'Images': expected a non-empty list")
        for j, image in enumerate(images):
            ref = _check_ref(image, f"Images[{j}]", obj)
            found.add_reference(ref, f"{obj} Images[{j}]")
