"""The eci-profile and the namespaces' labels, read from files.

``fastmatch match --profile FILE --namespaces FILE``: the profile is the
ConfigMap ``kube-system/eci-profile`` in the file (or its only ConfigMap), the
namespaces are the ``Namespace`` objects (``kubectl get ns -o yaml``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from fastmatch.errors import InputFileError
from fastmatch.inputs.documents import read_objects
from fastmatch.inputs.pods import NAMESPACE_NAME_LABEL
from fastmatch.inputs.profile import EciProfile

__all__ = ["PROFILE_NAME", "PROFILE_NAMESPACE", "read_namespaces", "read_profile"]

PROFILE_NAMESPACE = "kube-system"
PROFILE_NAME = "eci-profile"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def read_profile(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> EciProfile:
    """The eci-profile in ``paths``: the ConfigMap ``kube-system/eci-profile``, else the
    only ConfigMap there is.  None, or several and none of them that one, is bad input."""
    found = []
    for loc in read_objects(paths):
        obj = loc.obj
        assert isinstance(obj, Mapping)
        if obj.get("kind") == "ConfigMap":
            found.append((loc, _meta(obj)))
    named = [
        (loc, meta) for loc, meta in found
        if meta.get("name") == PROFILE_NAME and meta.get("namespace") in (None, PROFILE_NAMESPACE)
    ]
    chosen = named or found
    if len(chosen) != 1:
        listed = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        shown = ", ".join(os.fspath(path) for path in listed)
        what = "no ConfigMap" if not chosen else f"{len(chosen)} ConfigMaps, none of them"
        raise InputFileError(f"{shown}: {what} {PROFILE_NAMESPACE}/{PROFILE_NAME}")
    loc = chosen[0][0]
    return EciProfile.from_configmap(loc.obj, where=loc.where)


def read_namespaces(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> dict[str, dict[str, str]]:
    """Each ``Namespace`` object's name to its labels (other kinds skipped)."""
    namespaces: dict[str, dict[str, str]] = {}
    for loc in read_objects(paths):
        obj = loc.obj
        assert isinstance(obj, Mapping)
        if obj.get("kind") != "Namespace":
            continue
        meta = _meta(obj)
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise InputFileError(f"{loc.where}: metadata.name: missing")
        labels = meta.get("labels") or {}
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InputFileError(f"{loc.where}: metadata.labels: expected a mapping of strings")
        # The API server labels every namespace with its name; a file from
        # `kubectl get ns -o yaml` has it, a hand-written one may not.
        namespaces[name] = {NAMESPACE_NAME_LABEL: name, **labels}
    return namespaces
