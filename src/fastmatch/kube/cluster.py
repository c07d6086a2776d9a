"""``ClusterIndex``: a :class:`~fastmatch.CacheIndex` that follows the cluster (SPEC §10).

Threads, and why each:

- one reflector per kind (:mod:`fastmatch.kube.sync`): ImageCaches, and with
  ``profile=True`` the eci-profile ConfigMap and the namespaces.  Each only
  reads its socket and hands what it read to a bounded queue, so that applying
  never keeps it from the socket (the API server drops a watcher whose buffer
  stays full for 100 ms);
- one applier: takes everything queued at once (up to ``batch_size`` events),
  and writes it to the index as one batch through
  :func:`~fastmatch.kube.apply.apply_batch`; the index takes matches while it
  writes.  It is the only writer, so the stores need no lock;
- with a ``resolver``, one resolution thread (:mod:`fastmatch.kube.resolve`):
  caches enter at once with their images by reference and are upgraded when the
  layers arrive.

``match_pod`` runs on the caller's threads, any number of them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from fastmatch.index import CacheIndex
from fastmatch.inputs import LayerSource, PodRequest
from fastmatch.kube.errors import KubeConfigError, KubeError
from fastmatch.kube.resolve import Layers
from fastmatch.kube.resources import CONFIGMAPS, IMAGECACHES, NAMESPACES, listers
from fastmatch.kube.stats import SyncStats
from fastmatch.kube.store import CacheStore, NamespaceStore, ProfileStore
from fastmatch.kube.sync import Event, Reflector, SyncOptions
from fastmatch.result import MatchResult
from fastmatch.timeutil import TimeLike

__all__ = ["ClusterIndex"]

_STOP_WITHIN = 0.9  # stop() returns within a second, whatever the threads are doing
_POLL = 0.05  # how often a blocked queue call looks at the stop flag


def _default_client() -> Any:
    """An ``ApiClient`` from the in-cluster config, else ``~/.kube/config``."""
    try:
        from kubernetes import client, config
    except ImportError:  # pragma: no cover - the extra is installed wherever kube runs
        raise KubeConfigError("fastmatch.kube needs the kubernetes client: "
                              "pip install 'fastmatch[kube]'") from None
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException as in_cluster:
        try:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError, ValueError) as exc:
            raise KubeConfigError(f"no way to reach the API server: not in a cluster "
                                  f"({in_cluster}), and no usable kubeconfig ({exc})") from None
    return client.ApiClient(configuration)


class _QueueSink:
    """The reflectors' side of the queue: a put that gives up when the sync stops."""

    def __init__(self, owner: ClusterIndex) -> None:
        self._owner = owner

    def _put(self, item: tuple[str, str, Any, float, int]) -> bool:
        owner = self._owner
        owner._count(item[4])
        while not owner._stop.is_set():
            try:
                owner._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue  # the applier is behind: wait here, not on the socket's behalf
        return False

    def page(self, kind: str, items: list[dict[str, Any]], first: bool) -> bool:
        return self._put(("page", kind, (items, first), time.monotonic(), 0))

    def replace(self, kind: str, resource_version: str) -> bool:
        return self._put(("replace", kind, resource_version, time.monotonic(), 0))

    def events(self, kind: str, events: list[Event], received: float) -> bool:
        return self._put(("events", kind, events, received, len(events)))


class ClusterIndex:
    """A :class:`~fastmatch.CacheIndex` kept equal to the cluster's ImageCaches (SPEC §10).

    ``api_client``: a ``kubernetes.client.ApiClient`` (``None``: the in-cluster config,
    else ``~/.kube/config``).  ``catalog``: a layer source (a §8
    :class:`~fastmatch.Catalog`) read as objects arrive; ``resolver``: a layer source
    asked in the background (a registry); with neither, images stay known by
    reference.  ``profile``: follow ``kube-system/eci-profile`` and the namespaces'
    labels for :meth:`match_pod` (``False``: read no ConfigMap and no namespace).
    ``snapshot``: a saved index (:meth:`CacheIndex.save`) to serve from at once while
    the first list runs.  ``options``: how to talk to the API server
    (:class:`~fastmatch.kube.sync.SyncOptions`).  ``queue_size``: the chunks read and
    not yet applied before the readers wait; ``batch_size``: the most watch events
    written to the index in one batch (a relist's replace is always one).  The core
    writes a batch holding the GIL, so it bounds how long a match may wait on the
    sync: 512 caches of 5 images take about 2.5 ms, 4096 about 20 ms, and batches of
    a few hundred cost no more per event than larger ones.

    >>> ci = ClusterIndex(api_client)           # doctest: +SKIP
    >>> ci.start(); ci.wait_ready(timeout=30.0)  # doctest: +SKIP
    True
    >>> ci.match_pod(pod).cache_id               # doctest: +SKIP
    'imc-2ze5tm5gehgtiiga8x3k'
    >>> ci.stop()                                # doctest: +SKIP
    """

    def __init__(
        self,
        api_client: Any = None,
        *,
        catalog: LayerSource | None = None,
        resolver: LayerSource | None = None,
        profile: bool = True,
        snapshot: str | os.PathLike[str] | None = None,
        options: SyncOptions | None = None,
        queue_size: int = 1024,
        batch_size: int = 512,
    ) -> None:
        for name, value in (("queue_size", queue_size), ("batch_size", batch_size)):
            if type(value) is not int or value < 1:
                raise KubeConfigError(f"{name} must be a positive integer, got {value!r}")
        if options is not None and not isinstance(options, SyncOptions):
            raise KubeConfigError(f"options must be SyncOptions, got {type(options).__name__}")
        self._owns_client = api_client is None
        self._api = _default_client() if api_client is None else api_client
        self._index = CacheIndex.load(snapshot) if snapshot is not None else CacheIndex()
        self._stats = SyncStats()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._queue: queue.Queue[tuple[str, str, Any, float, int]] = queue.Queue(queue_size)
        self._queued = 0  # events in the queue
        self._queued_lock = threading.Lock()
        self._batch_size = batch_size
        self._follow_profile = bool(profile)
        options = options or SyncOptions()
        self._layers = Layers(catalog, resolver, stats=self._stats, resolved=self._resolved,
                              retry_first=options.resolve_retry_initial,
                              retry_cap=options.resolve_retry_cap)
        self._source = self._layers if catalog is not None or resolver is not None else None
        self._caches = CacheStore(
            self._index, stats=self._stats, layers=self._source,
            waiting=self._layers.want if resolver is not None else None,
        )
        self._profile = ProfileStore(self._stats)
        self._namespaces = NamespaceStore()
        self._listed: set[str] = set()
        sink = _QueueSink(self)
        self._reflectors = [
            Reflector(kind, lister, sink, stop=self._stop, stats=self._stats, options=options)
            for kind, lister in listers(self._api, profile=self._follow_profile).items()
        ]
        self._kinds = {r.kind for r in self._reflectors}
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- life -----------------------------------------------------------------------

    def start(self) -> None:
        """Start following the cluster (the first list, then the watches); returns at once.
        Calling it again does nothing; a stopped index cannot start again."""
        if self._stop.is_set():
            raise KubeError("this ClusterIndex was stopped; make a new one")
        if self._started:
            return
        self._started = True
        self._layers.start()
        self._threads.append(threading.Thread(target=self._apply_loop, name="fastmatch-apply",
                                              daemon=True))
        self._threads.extend(
            threading.Thread(target=r.run, name=f"fastmatch-watch-{r.kind}", daemon=True)
            for r in self._reflectors
        )
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until :attr:`ready`, at most ``timeout`` seconds; return whether it is."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        """Whether the first full list of every kind followed is in the index (ids and
        phases; layers may arrive after)."""
        return self._ready.is_set()

    def stop(self) -> None:
        """Stop the sync; returns within a second, and no request leaves after it."""
        deadline = time.monotonic() + _STOP_WITHIN
        self._stop.set()
        for reflector in self._reflectors:
            reflector.close()
        self._layers.stop(timeout=0)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._owns_client:
            with contextlib.suppress(Exception):  # best effort: the sync is over
                self._api.close()

    def __enter__(self) -> ClusterIndex:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading --------------------------------------------------------------------

    @property
    def index(self) -> CacheIndex:
        """The index: every ImageCache in the cluster, whatever its phase, by
        ``status.imageCacheId`` (else ``metadata.name``)."""
        return self._index

    def match_pod(
        self,
        pod_obj: Mapping[str, Any],
        *,
        namespace_labels: Mapping[str, str] | None = None,
        now: TimeLike | None = None,
    ) -> MatchResult:
        """Choose a cache for a ``Pod`` object (an admission request's, say; SPEC §3).

        The eci-profile followed is applied first, with ``namespace_labels`` (default:
        the labels of the pod's namespace as followed); its images come from the layer
        sources, else by reference.  Bad input raises
        :class:`~fastmatch.errors.InputFileError` naming the pod and the field.
        """
        profile = self._profile.profile if self._follow_profile else None
        labels = namespace_labels
        if labels is None and profile is not None and profile.selectors:
            meta = pod_obj.get("metadata") if isinstance(pod_obj, Mapping) else None
            namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
            labels = self._namespaces.get(namespace if isinstance(namespace, str) and namespace
                                          else "default")
        request = PodRequest.from_object(pod_obj, catalog=self._source, profile=profile,
                                         namespace_labels=labels)
        return self._index.match_pod(request, now=now)

    def stats(self) -> dict[str, float]:
        """Numbers for an operator: ``events_applied``, ``relists``, ``lag_seconds`` (how
        long the last batch waited between its socket and the index), ``queue_depth``
        (events read and not yet applied), ``caches``, ``resolve_failures``, and more
        detail (``lag_p99_seconds``, ``watches``, ``dead_streams``, ``bad_objects``,
        ``profile_errors``, ``ready``...)."""
        report = self._stats.snapshot()
        with self._queued_lock:
            report["queue_depth"] = self._queued
        report["caches"] = len(self._index)
        report["caches_ready"] = self._index.ready
        report["ready"] = int(self.ready)
        report["resolve_pending"] = self._layers.pending
        report["namespaces"] = len(self._namespaces.labels)
        report["selectors"] = len(self._profile.profile.selectors)
        version = next((r.resource_version for r in self._reflectors if r.kind == IMAGECACHES),
                       "")
        report["resource_version"] = int(version) if version.isdigit() else 0
        return report

    def problems(self) -> list[str]:
        """The last problems the sync met (failed requests, unreadable objects), oldest
        first: what an operator reads when the stats say something is wrong."""
        return self._stats.problems()

    # -- the applier ----------------------------------------------------------------

    def _count(self, n: int) -> None:
        with self._queued_lock:
            self._queued += n

    def _resolved(self, ref: str) -> None:
        # From the resolution thread: the upgrade is a write, so the applier makes it.
        while not self._stop.is_set():
            try:
                self._queue.put(("resolved", IMAGECACHES, ref, time.monotonic(), 0),
                                timeout=_POLL)
                return
            except queue.Full:
                continue

    def _apply_loop(self) -> None:
        get = self._queue.get
        while not self._stop.is_set():
            try:
                item = get(timeout=_POLL)
            except queue.Empty:
                continue
            items, events = [item], item[4]
            while events < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                events += item[4]
            try:
                self._apply(items)
            except Exception as exc:  # the sync must outlive a bug in one batch
                self._stats.problem(f"applying a batch failed: {type(exc).__name__}: {exc}")
            self._count(-events)

    def _apply(self, items: list[tuple[str, str, Any, float, int]]) -> None:
        run: list[Event] = []  # consecutive ImageCache events: batches in the index
        oldest = None
        for op, kind, payload, received, _ in items:
            if op == "events" and kind == IMAGECACHES:
                run.extend(payload)
                oldest = received if oldest is None else min(oldest, received)
                continue
            if run:
                self._write(run)
                run = []
            if op == "resolved":
                self._caches.upgrade([payload])
            elif op == "page":
                objs, first = payload
                self._store(kind).page(objs, first=first)
            elif op == "replace":
                self._store(kind).commit()
                self._listed.add(kind)
                if self._listed >= self._kinds:
                    self._ready.set()
            elif kind == CONFIGMAPS:
                self._profile.apply(payload)
            elif kind == NAMESPACES:
                self._namespaces.apply(payload)
        if run:
            self._write(run)
        if oldest is not None:
            self._stats.lag(time.monotonic() - oldest)

    def _write(self, run: list[Event]) -> None:
        # Watch events are each a change of their own, so the run is cut into batches
        # of at most batch_size: each one holds the GIL for a bounded stretch.
        size = self._batch_size
        for start in range(0, len(run), size):
            self._caches.apply(run[start:start + size])

    def _store(self, kind: str) -> CacheStore | ProfileStore | NamespaceStore:
        if kind == IMAGECACHES:
            return self._caches
        return self._profile if kind == CONFIGMAPS else self._namespaces
