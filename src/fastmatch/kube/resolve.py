"""Layers for the images the cluster names, off the event path.

:class:`Layers` is the layer source the sync and ``match_pod`` read through:
the catalog first, then what the background resolution has found.  A
reference neither knows is kept by reference (SPEC §1: it still matches a
cache listing it by name) and, when a resolver is given, queued; a thread asks
the resolver (a registry, seconds away) and, when layers arrive, tells the
sync which reference to read again.  A resolution that fails is retried with
backoff (1 s doubling to 5 min) and counted in ``resolve_failures``; one the
resolver answers ``None`` to (it does not know the image) is not asked again.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

from fastmatch.inputs import LayerSource
from fastmatch.kube.stats import SyncStats
from fastmatch.model import Image

__all__ = ["Layers"]

RETRY_FIRST = 1.0
RETRY_CAP = 300.0


class Layers:
    """A :class:`~fastmatch.inputs.LayerSource`: ``catalog``, then what ``resolver`` found.

    ``resolved`` is called (on the resolution thread) with each reference whose layers
    just arrived.  Thread-safe: the applier and every thread matching pods read it.
    """

    def __init__(
        self,
        catalog: LayerSource | None = None,
        resolver: LayerSource | None = None,
        *,
        stats: SyncStats,
        resolved: Callable[[str], None] | None = None,
        retry_first: float = RETRY_FIRST,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        self.catalog = catalog
        self.resolver = resolver
        self._stats = stats
        self._resolved_hook = resolved
        self._found: dict[tuple[str, str | None], Image] = {}
        self._settled: set[tuple[str, str | None]] = set()  # found, or unknown to the resolver
        self._asked: set[tuple[str, str | None]] = set()  # queued or being resolved
        self._queue: list[tuple[float, int, str, str | None, float]] = []  # due, seq, ref...
        self._seq = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._retry_first, self._retry_cap = retry_first, retry_cap

    @property
    def pending(self) -> int:
        """References waiting for their layers."""
        with self._cond:
            return len(self._asked)

    def get(self, ref: str, *, platform: str | None = None) -> Image | None:
        """The image with its layers, if the catalog or a past resolution knows it."""
        if self.catalog is not None:
            image = self.catalog.get(ref, platform=platform)
            if image is not None:
                return image
        image = self._found.get((ref, platform))
        if image is None and self.resolver is not None:
            self.want(ref, platform)
        return image

    def want(self, ref: str, platform: str | None = None) -> None:
        """Queue ``ref`` for resolution (once; nothing without a resolver)."""
        key = (ref, platform)
        if self.resolver is None or key in self._settled or key in self._asked:
            return
        with self._cond:
            if key in self._settled or key in self._asked or self._stop:
                return
            self._asked.add(key)
            self._push(0.0, ref, platform, self._retry_first)

    def _push(self, delay: float, ref: str, platform: str | None, retry: float) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time.monotonic() + delay, self._seq, ref, platform, retry))
        self._cond.notify()

    # -- the resolution thread ------------------------------------------------------

    def start(self) -> None:
        """Start resolving in the background (nothing to do without a resolver)."""
        if self.resolver is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fastmatch-resolve",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop resolving; a resolution in flight is let finish in the background."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next(self) -> tuple[str, str | None, float] | None:
        with self._cond:
            while not self._stop:
                if self._queue:
                    due = self._queue[0][0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        _, _, ref, platform, retry = heapq.heappop(self._queue)
                        return ref, platform, retry
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
        return None

    def _run(self) -> None:
        assert self.resolver is not None
        while (job := self._next()) is not None:
            ref, platform, retry = job
            key = (ref, platform)
            try:
                image = self.resolver.get(ref, platform=platform)
            except Exception as exc:  # a registry's trouble must not end the thread
                # The resolver promises a FastmatchError when it cannot tell now; anything
                # else is as transient for us: the cache stays known by reference meanwhile.
                self._stats.add("resolve_failures")
                self._stats.problem(f"resolving {ref}: {type(exc).__name__}: {exc}; "
                                    f"again in {retry:.0f} s")
                with self._cond:
                    if not self._stop:
                        self._push(retry, ref, platform, min(retry * 2, self._retry_cap))
                continue
            with self._cond:
                self._asked.discard(key)
                self._settled.add(key)
                if image is not None:
                    self._found[key] = image
            if image is not None:
                self._stats.add("resolved")
                if self._resolved_hook is not None:
                    self._resolved_hook(ref)
