"""The cluster adapter (SPEC §10): an index that follows a cluster's ImageCaches.

- :class:`ClusterIndex`: the embeddable index a scheduler or the webhook runs,
  kept equal to the cluster through watch timeouts, ``410 Gone``, dropped
  connections and API-server restarts;
- :class:`Reflector`, :class:`SyncOptions`: client-go's list-and-watch loop for
  one kind, and how it talks to the API server;
- :func:`apply_batch`: the one door through which the sync writes to an index.

Needs the ``kubernetes`` client (``pip install 'fastmatch[kube]'``); ``import
fastmatch`` does not import this package.
"""

from fastmatch.kube.apply import apply_batch
from fastmatch.kube.backoff import Backoff
from fastmatch.kube.cluster import ClusterIndex
from fastmatch.kube.errors import KubeConfigError, KubeError
from fastmatch.kube.sync import Reflector, SyncOptions

__all__ = [
    "Backoff",
    "ClusterIndex",
    "KubeConfigError",
    "KubeError",
    "Reflector",
    "SyncOptions",
    "apply_batch",
]
