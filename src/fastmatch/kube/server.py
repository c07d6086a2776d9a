"""The webhook's HTTPS server: ``/mutate``, ``/healthz``, ``/readyz``, ``/metrics``.

Built on aiohttp (asyncio, HTTP/1.1 keep-alive, a C HTTP parser, graceful
shutdown that closes idle keep-alive connections and waits for the requests in
flight), measured in ``bench/test_bench_webhook.py``.  The API server keeps its
connections to the webhook open, so one process serves many requests a
connection; the decision itself takes tens of microseconds and runs on the
event loop (no I/O in it: the sync resolves layers in the background), and one
that ends past ``budget_ms`` is dropped: the pod is admitted unchanged, with a
warning.  For a decider that may block, ``workers`` threads decide instead and
the budget is a hard deadline.

TLS comes from files and is reloaded when they change (cert-manager rotates
them in place): the context's certificate is replaced, so new connections get
the new one and open ones keep theirs.  A half-written pair fails to load and
is retried on the next look, the old certificate serving meanwhile.

The server fails open: a request it cannot decide is admitted unchanged, never
answered with an error; only a body that is not an AdmissionReview gets HTTP 400
(413 over the body limit, 408 when the client stops sending it).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fastmatch.errors import FastmatchError
from fastmatch.inputs.source import LayerSource
from fastmatch.kube.admission import (
    Admission,
    AdmissionError,
    PodDecider,
    Review,
    admit,
    allowed,
    parse_review,
)

__all__ = ["BODY_LIMIT", "DURATION_BUCKETS", "CacheCreator", "TlsFiles", "WebhookServer"]

log = logging.getLogger("fastmatch.webhook")

BODY_LIMIT = 3 * 1024 * 1024  # the API server's own request limit is 3 MiB
# From 0.5 ms (a decision) to 2.5 s (past the API server's 2 s timeout).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_JSON = "application/json"


class TlsFiles:
    """A server TLS context from a certificate and a key file, reloaded by
    :meth:`reload_if_changed` when either file changes."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self._stamp = self._stat()
        try:
            self.context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise FastmatchError(
                f"--tls-cert {cert_file} / --tls-key {key_file}: cannot load: {exc}"
            ) from None
        self.reloads = 0

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.cert_file, self.key_file):
            try:
                st = os.stat(path)  # through symlinks: a Secret volume swaps a link
            except OSError:
                stamps.append((0, 0, 0))
            else:
                stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; return whether a
        new certificate is in use.  A pair that does not load (one file written, not
        the other yet) leaves the old one in use, and is tried again next time."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.warning("TLS files changed but do not load yet (%s); keeping the old ones", exc)
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert_file)
        return True


class _SyncCollector(Collector):
    """The sync's numbers, read from the decider's ``stats()`` at each scrape."""

    def __init__(self, decider: PodDecider) -> None:
        self._decider = decider

    def collect(self) -> Iterator[Metric]:
        try:
            stats = dict(self._decider.stats())
        except Exception:  # a scrape must not fail with the sync
            log.exception("stats() failed during a scrape")
            return
        events = {kind: stats[key] for kind, key in (("applied", "events_applied"),
                                                     ("skipped", "events_skipped"),
                                                     ("bookmark", "bookmarks"))
                  if isinstance(stats.get(key), int | float)}
        yield from _labelled(CounterMetricFamily, "fastmatch_sync_events",
                             "Watch events read: applied to the index, skipped (not newer "
                             "than what it holds), bookmarks", "type", events, "applied")
        yield from _labelled(CounterMetricFamily, "fastmatch_sync_relists",
                             "Full lists of the watched kinds", "reason",
                             stats.get("relists"), "all")
        for name, key, text in (
            ("fastmatch_sync_lag_seconds", "lag_seconds",
             "Age of the newest event applied when it was applied"),
            ("fastmatch_sync_queue_depth", "queue_depth", "Watch events waiting to be applied"),
            ("fastmatch_index_caches", "caches", "Image caches in the index"),
        ):
            value = stats.get(key)
            if isinstance(value, int | float):
                yield GaugeMetricFamily(name, text, value=float(value))
        failures = stats.get("resolve_failures")
        if isinstance(failures, int | float):
            yield CounterMetricFamily("fastmatch_resolve_failures",
                                      "Images the layer source could not resolve",
                                      value=float(failures))


def _labelled(
    family: Callable[..., Any], name: str, text: str, label: str, value: object, default: str
) -> Iterator[Metric]:
    if isinstance(value, Mapping):
        metric = family(name, text, labels=[label])
        for key, count in sorted(value.items()):
            metric.add_metric([str(key)], float(count))
        yield metric
    elif isinstance(value, int | float):
        metric = family(name, text, labels=[label])
        metric.add_metric([default], float(value))
        yield metric


class _CreatorCollector(Collector):
    """What the background creator did (its ``created``, ``existed``, ``failed``)."""

    def __init__(self, creator: object) -> None:
        self._creator = creator

    def collect(self) -> Iterator[Metric]:
        counts = {result: getattr(self._creator, result, None)
                  for result in ("created", "existed", "failed")}
        yield from _labelled(CounterMetricFamily, "fastmatch_autocreate",
                             "ImageCaches the webhook asked the API server for: created, "
                             "there already (409), failed",
                             "result", {k: v for k, v in counts.items()
                                        if isinstance(v, int | float)}, "created")


class _Metrics:
    def __init__(self, registry: CollectorRegistry, decider: PodDecider,
                 creator: object = None) -> None:
        self.requests = Counter("fastmatch_admission_requests",
                                "Admission requests answered, by what was done",
                                ["outcome"], registry=registry)
        self.duration = Histogram("fastmatch_admission_duration_seconds",
                                  "Time to answer an admission request",
                                  buckets=DURATION_BUCKETS, registry=registry)
        self.decisions = Counter("fastmatch_decisions", "Decisions made, by outcome",
                                 ["outcome"], registry=registry)
        registry.register(_SyncCollector(decider))
        if creator is not None:
            registry.register(_CreatorCollector(creator))


class CacheCreator(Protocol):
    """What the server hands the ImageCaches to create to
    (:class:`fastmatch.kube.autocreate.AutoCreator`): it must not block."""

    def submit(self, obj: dict[str, Any]) -> bool:
        """Queue ``obj`` for creation; return whether it was queued."""
        ...


class WebhookServer:
    """The admission webhook over HTTPS (SPEC §10).

    ``decider``: the cluster index (or any :class:`PodDecider`); ``tls``: the
    certificate files; ``budget_ms``: the time to answer a review in, from its
    arrival; ``layers``: the catalog, for warnings about images it does not
    know; ``creator``: takes the ImageCache objects to create (an
    :class:`~fastmatch.kube.autocreate.AutoCreator`), or ``None`` to create
    nothing; ``read_timeout``: seconds a client has to send its body;
    ``grace``: seconds in-flight requests get at shutdown; ``keepalive_timeout``:
    seconds an idle connection is kept, longer than the API server's own 90 s, so
    that the client closes an idle connection first (a request sent on a connection
    the server is closing fails, and the pod goes unpatched); ``workers``: 0 (the
    default) decides on the event loop, and a decision that ends past the budget is
    dropped for the budget's answer; ``N`` threads decide instead, so that even a
    decision that blocks (a decider that waits on I/O or a lock) cannot keep the
    answer past the budget, at a cost: the hand-offs between the loop and the
    threads take the GIL back and forth (a quarter more instructions a review, and
    the answered rate falls short of 1,000 a second on two cores:
    bench/test_bench_webhook.py).
    """

    def __init__(
        self,
        decider: PodDecider,
        tls: TlsFiles,
        *,
        host: str = "0.0.0.0",
        port: int = 8443,
        budget_ms: float = 200.0,
        layers: LayerSource | None = None,
        creator: CacheCreator | None = None,
        body_limit: int = BODY_LIMIT,
        read_timeout: float = 10.0,
        keepalive_timeout: float = 120.0,
        grace: float = 25.0,
        reload_interval: float = 1.0,
        workers: int = 0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if budget_ms <= 0:
            raise FastmatchError(f"--budget-ms: expected a positive number, got {budget_ms}")
        self.decider = decider
        self.tls = tls
        self.host = host
        self.port = port
        self.budget = budget_ms / 1000.0
        self.layers = layers
        self.creator = creator
        self.body_limit = body_limit
        self.read_timeout = read_timeout
        self.keepalive_timeout = keepalive_timeout
        self.grace = grace
        self.reload_interval = reload_interval
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = _Metrics(self.registry, decider, creator)
        self._pool = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastmatch-admit")
                      if workers > 0 else None)
        self._runner: web.AppRunner | None = None
        self._reloader: asyncio.Task[None] | None = None
        self.stopping = False
        self._frozen = False  # the synced index frozen out of the collector (see _freeze_if_ready)

    # -- the application -----------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (its routes), for a runner of the caller's."""
        # The body limit is checked by the handler, which answers 413 itself; aiohttp's
        # own limit is set above it so that it never answers first.
        app = web.Application(client_max_size=self.body_limit + 1)
        app.router.add_post("/mutate", self._mutate)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.stopping:
            return web.Response(status=503, text="shutting down\n")
        try:
            ready = bool(self.decider.ready)
        except Exception:
            log.exception("ready check failed")
            ready = False
        if not ready:
            return web.Response(status=503, text="the image caches are not synced yet\n")
        if not self._frozen:  # the synced index is about to be frozen (a pause): not yet
            return web.Response(status=503, text="the image caches are being settled\n")
        return web.Response(text="ok\n")

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    @staticmethod
    def _error(status: int, message: str, *, close: bool = False) -> web.Response:
        response = web.json_response({"error": message}, status=status)
        if close:  # the rest of the body is unread: the connection cannot carry on
            response.force_close()
        return response

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        length = request.content_length
        if length is not None and length > self.body_limit:
            return self._error(413, f"the body is {length} bytes, over the "
                               f"{self.body_limit}-byte limit", close=True)

        async def read_all() -> bytes | None:
            chunks, size = [], 0
            while chunk := await request.content.read(1 << 16):  # b"" at the end
                size += len(chunk)
                if size > self.body_limit:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            async with asyncio.timeout(self.read_timeout):  # no task per request, as wait_for
                body = await read_all()
        except TimeoutError:  # a client that stopped mid-body: free the connection
            return self._error(408, f"the body did not arrive within {self.read_timeout:g} s",
                               close=True)
        if body is None:
            return self._error(413, f"the body is over the {self.body_limit}-byte limit",
                               close=True)
        return body

    def _decide(self, review: Review) -> Admission:
        return admit(review, self.decider, layers=self.layers)

    async def _mutate(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        metrics = self._metrics
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            metrics.requests.labels("bad_request").inc()
            return body
        try:
            review = parse_review(body)
        except AdmissionError as exc:
            metrics.requests.labels("bad_request").inc()
            return self._error(exc.status, str(exc))
        remaining = self.budget - (time.perf_counter() - start)
        try:
            if self._pool is None:
                admission = self._decide(review)
                if time.perf_counter() - start > self.budget:
                    raise TimeoutError  # too late to be of use: the same answer as a timeout
            else:
                loop = asyncio.get_running_loop()
                admission = await asyncio.wait_for(
                    loop.run_in_executor(self._pool, self._decide, review),
                    max(remaining, 0.0))
        except AdmissionError as exc:
            metrics.requests.labels("bad_request").inc()
            return self._error(exc.status, str(exc))
        except TimeoutError:
            admission = Admission(
                allowed(review, warnings=[f"fastmatch: no decision within the "
                                          f"{self.budget * 1000:g} ms budget; the pod is "
                                          "admitted unchanged"]),
                "over_budget",
            )
            log.warning("uid %s: no decision within %g ms", review.uid, self.budget * 1000)
        except Exception as exc:  # fail open: never the reason a pod is not created
            log.exception("uid %s: the decision failed", review.uid)
            admission = Admission(
                allowed(review, warnings=["fastmatch: internal error; the pod is admitted "
                                          "unchanged"]),
                "error", error=repr(exc),
            )
        self._after(review, admission, start)
        return web.Response(body=json.dumps(admission.review, separators=(",", ":")).encode(),
                            content_type=_JSON)

    def _after(self, review: Review, admission: Admission, start: float) -> None:
        metrics = self._metrics
        result = admission.result
        if result is not None:
            metrics.decisions.labels(result.outcome).inc()
        if admission.create is not None and self.creator is not None:
            try:
                self.creator.submit(admission.create)
            except Exception:
                log.exception("uid %s: the cache to create was not queued", review.uid)
        if admission.error is not None and admission.outcome == "error":
            log.error("uid %s: admitted unchanged: %s", review.uid, admission.error)
        elapsed = time.perf_counter() - start
        metrics.requests.labels(admission.outcome).inc()
        metrics.duration.observe(elapsed)
        if log.isEnabledFor(logging.DEBUG):
            request = review.request
            log.debug("%s", json.dumps({
                "uid": review.uid,
                "namespace": request.get("namespace"),
                "outcome": admission.outcome,
                "decision": result.outcome if result is not None else None,
                "cache_id": result.cache_id if result is not None else None,
                "create": admission.create["metadata"]["name"] if admission.create else None,
                "dry_run": review.dry_run,
                "seconds": round(elapsed, 6),
            }, separators=(",", ":")))

    # -- running ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve (``port`` 0 picks a free port; :attr:`port` then says which)."""
        # After an answer sent before the body was read (413, 408), the rest of the body is
        # read and dropped for a short while, so that a client still sending gets to read
        # the answer; then the connection is closed.
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=self.grace,
                               keepalive_timeout=self.keepalive_timeout,
                               lingering_time=min(1.0, self.read_timeout))
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.tls.context,
                           backlog=1024)
        await site.start()
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._reloader = asyncio.create_task(self._reload_loop())
        log.info("serving on https://%s:%d", self.host, self.port)

    async def _reload_loop(self) -> None:
        while True:
            if not self._frozen:
                self._frozen = self._freeze_if_ready()
            await asyncio.sleep(0.05 if not self._frozen else self.reload_interval)
            self.tls.reload_if_changed()

    def _freeze_if_ready(self) -> bool:
        # The index's objects (caches, images, layers: hundreds of thousands) live as
        # long as the process; left to the collector, each full collection walks them
        # all, a pause of tens of milliseconds in the middle of some request.  Once the
        # first sync is in, they move to the permanent generation (later changes are
        # few, and collected as usual).  The freeze itself is one such pause: /readyz
        # says ready only after it, so that the API server sends no review into it.
        try:
            ready = bool(self.decider.ready)
        except Exception:
            return False
        if ready:
            gc.collect()
            gc.freeze()
        return ready

    async def stop(self) -> None:
        """Stop taking connections, close idle keep-alive ones, let the requests in
        flight finish (``grace`` seconds at most), then close."""
        self.stopping = True
        if self._reloader is not None:
            self._reloader.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def serve_forever(self) -> int:
        """Serve until SIGTERM or SIGINT, then stop gracefully; return the exit code."""

        async def main() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, done.set)
            await self.start()
            await done.wait()
            log.info("stopping: finishing the requests in flight")
            await self.stop()

        asyncio.run(main())
        return 0
