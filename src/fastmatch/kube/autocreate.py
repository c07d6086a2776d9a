"""Create-if-absent of the ImageCaches the webhook proposes, off the hot path.

The admission handler only queues the object (:meth:`AutoCreator.submit`
never blocks); one background thread creates it through the API server.  An
image set is created at most once across replicas and webhook processes: its
name is derived from the image set alone
(:func:`fastmatch.kube.admission.cache_object_name`), so a second creation,
from this process or another, gets ``409 Conflict``, which means done.  This
process also remembers the names it created or saw exist, so that the ten
replicas of one Deployment make one API call, not ten.  A creation that fails
otherwise is forgotten, so that the next pod of the set tries again.

Dry runs never reach here: the admission leaves ``create`` empty for them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["AutoCreator", "create_with_client"]

log = logging.getLogger("fastmatch.webhook")

_GROUP, _VERSION, _PLURAL = "eci.alibabacloud.com", "v1", "imagecaches"
_STOP = object()


def create_with_client(api_client: Any) -> Callable[[dict[str, Any]], bool]:
    """A create function over a ``kubernetes.client.ApiClient``: ``True`` when the
    ImageCache was created, ``False`` when it existed (409); other API errors raise."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.CustomObjectsApi(api_client)

    def create(obj: dict[str, Any]) -> bool:
        try:
            api.create_cluster_custom_object(_GROUP, _VERSION, _PLURAL, obj,
                                             _request_timeout=10)
        except ApiException as exc:
            if exc.status == 409:  # created already: by another replica or process
                return False
            raise
        return True

    return create


class AutoCreator:
    """A background creator of ImageCache objects.

    ``create`` makes one object and says whether it was new (``True``) or
    there already (``False``), raising on any other failure
    (:func:`create_with_client` over the API server); ``max_queue`` caps the
    objects waiting.  :attr:`created`, :attr:`existed` and :attr:`failed` count
    the outcomes.
    """

    def __init__(self, create: Callable[[dict[str, Any]], bool], *,
                 max_queue: int = 1000) -> None:
        self._create = create
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._known: set[str] = set()  # names queued, created or seen to exist
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.created = 0
        self.existed = 0
        self.failed = 0

    def submit(self, obj: dict[str, Any]) -> bool:
        """Queue ``obj`` (an ImageCache object) for creation unless its name was queued
        or done before; return whether it was queued.  Never blocks: a full queue drops
        it (a later pod of the same images asks again)."""
        name = obj["metadata"]["name"]
        with self._lock:
            if name in self._known:
                return False
            self._known.add(name)
        try:
            self._queue.put_nowait(obj)
        except queue.Full:
            with self._lock:
                self._known.discard(name)
            log.warning("ImageCache %s not queued: %d creations are waiting", name,
                        self._queue.maxsize)
            return False
        return True

    def start(self) -> None:
        """Start the creating thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fastmatch-autocreate",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the thread finish the creation under way and stop (what is still queued is
        dropped: the next pod of those images proposes it again)."""
        thread = self._thread
        if thread is None:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        thread.join(timeout)
        self._thread = None

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued object is handled; return whether they were."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            obj = self._queue.get()
            try:
                if obj is _STOP:
                    return
                assert isinstance(obj, dict)
                self._one(obj)
            finally:
                self._queue.task_done()

    def _one(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        try:
            new = self._create(obj)
        except Exception as exc:
            self.failed += 1
            with self._lock:
                self._known.discard(name)  # the next pod of these images tries again
            log.error("ImageCache %s not created: %s", name, _short(exc))
            return
        if new:
            self.created += 1
            log.info("ImageCache %s created", name)
        else:
            self.existed += 1
            log.debug("ImageCache %s exists already", name)


def _short(exc: BaseException) -> str:
    # An ApiException's str() carries the response headers; its status and reason say enough.
    status = getattr(exc, "status", None)
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'reason', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
