"""Kubernetes and ECI objects into fastmatch's model objects (SPEC §6, §8).

One way from an object to a model object, for files (``fastmatch match``,
reports), watch events (the cluster sync) and admission requests (the
webhook); no network, no index, no clock but the ``now`` it is handed.

- :func:`read_pods`, :func:`pod_requests`, :class:`PodRequest`: Pods and
  workloads (one request per replica);
- :func:`read_caches`, :func:`cache_from_object`, :func:`cache_from_describe`:
  ``ImageCache`` objects and ``DescribeImageCaches`` answers;
- :func:`read_catalog`, :class:`Catalog`: the image catalog;
  :class:`LayerSource`: what a catalog and the registry resolver both are;
- :class:`EciProfile`, :func:`read_profile`, :func:`read_namespaces`: the
  eci-profile ConfigMap and the namespaces' labels it selects on;
- :func:`read_objects`: the documents of YAML and JSON files, each with where
  it was read.
"""

from fastmatch.inputs.caches import cache_from_describe, cache_from_object, read_caches
from fastmatch.inputs.catalog import Catalog, read_catalog
from fastmatch.inputs.documents import Located, read_objects
from fastmatch.inputs.images import ImageReader
from fastmatch.inputs.pods import PodRequest, pod_requests, read_pods
from fastmatch.inputs.profile import EciProfile
from fastmatch.inputs.profiles import read_namespaces, read_profile
from fastmatch.inputs.source import LayerSource

__all__ = [
    "Catalog",
    "EciProfile",
    "ImageReader",
    "LayerSource",
    "Located",
    "PodRequest",
    "cache_from_describe",
    "cache_from_object",
    "pod_requests",
    "read_caches",
    "read_catalog",
    "read_namespaces",
    "read_objects",
    "read_pods",
    "read_profile",
]
