"""The kinds the sync follows, as the official client lists and watches them."""

from __future__ import annotations

import functools
from typing import Any

from fastmatch.inputs.caches import API_VERSION
from fastmatch.inputs.profiles import PROFILE_NAME, PROFILE_NAMESPACE
from fastmatch.kube.sync import Lister

__all__ = ["CONFIGMAPS", "IMAGECACHES", "NAMESPACES", "listers"]

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "imagecaches"

IMAGECACHES = "imagecaches"
CONFIGMAPS = "configmaps"
NAMESPACES = "namespaces"


def listers(api_client: Any, *, profile: bool) -> dict[str, Lister]:
    """The list-and-watch call of each kind to follow: ImageCaches, and with ``profile``
    the one ConfigMap ``kube-system/eci-profile`` and the namespaces."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client)
    found: dict[str, Lister] = {
        IMAGECACHES: functools.partial(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL),
    }
    if profile:
        core = client.CoreV1Api(api_client)
        # Only the profile's own ConfigMap: RBAC grants that one, and kube-system's
        # other ConfigMaps change often and are none of the sync's business.
        found[CONFIGMAPS] = functools.partial(
            core.list_namespaced_config_map, PROFILE_NAMESPACE,
            field_selector=f"metadata.name={PROFILE_NAME}",
        )
        found[NAMESPACES] = core.list_namespace
    return found
