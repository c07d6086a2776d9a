"""An open-loop load on the admission webhook: AdmissionReviews over TLS with keep-alive, on
loopback, against an index of 10k synthetic caches (bench/workloads.py).

The webhook runs in a process of its own (``serve``), as it does in a cluster; the generator
here sends request *i* at ``t0 + i / rate`` whether or not earlier ones were answered (an
open loop, so a slow answer cannot hold back the next request and hide its own latency),
over kept-alive connections (``connections`` opened first, more when none is free, as the
API server's client does, up to 64), and measures each latency from the time the request
was due, not from when it was sent.  Both processes share the machine's two cores; the CPU
each used is reported beside the latencies.  The generator writes each request's bytes
whole and reads the answer by its length (no HTTP client library: aiohttp's client took
as much CPU as the webhook it measured).

    PYTHONPATH=src .venv/bin/python bench/webhook_load.py            # the table of issue 11
    PYTHONPATH=src .venv/bin/python bench/webhook_load.py --rates 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

N_CACHES = 10_000
N_PODS = 256  # distinct pods cycled through: a realistic mix, not one lucky pod
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    """One run at one rate: what was sent, answered, failed, the latencies and CPU."""

    rate: float
    seconds: float
    sent: int
    errors: int
    latencies: list[float]  # seconds, from when each request was due to its answer
    generator_cpu: float  # CPU seconds / wall seconds, of the generator process
    server_cpu: float  # the same, of the webhook process
    connections: int = 0  # kept-alive connections it took (opened when none was free)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency in seconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    def row(self) -> dict[str, Any]:
        """The figures as a table row (milliseconds, CPU as a share of one core)."""
        return {
            "rate": self.rate,
            "answered_per_s": round(len(self.latencies) / self.seconds, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "p99.9_ms": round(self.percentile(99.9) * 1000, 2),
            "errors": self.errors,
            "generator_cpu": f"{self.generator_cpu:.0%}",
            "server_cpu": f"{self.server_cpu:.0%}",
            "connections": self.connections,
        }


# -- the webhook process ----------------------------------------------------------------


class _Cluster:
    """The cluster index's face over the synthetic cluster (decided at its "now")."""

    def __init__(self, n_caches: int) -> None:
        import fastmatch as fm
        from fastmatch.inputs import Catalog

        from workloads import cluster

        world = cluster(n_caches, N_PODS)
        self.index = fm.CacheIndex(world.caches)
        self.catalog = Catalog(world.images)
        self.now = world.now
        self.ready = True

    def match_pod(self, pod_obj: Any, *, namespace_labels: Any = None) -> Any:
        from fastmatch.inputs import PodRequest

        request = PodRequest.from_object(pod_obj, catalog=self.catalog)
        return self.index.match_pod(request, now=self.now)

    def stats(self) -> dict[str, float]:
        return {"caches": len(self.index)}


def serve(cert: str, key: str, n_caches: int) -> int:
    """Run the webhook over the synthetic cluster on a free port (logged on stderr)."""
    import logging

    from fastmatch.kube.server import TlsFiles, WebhookServer

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    cluster = _Cluster(n_caches)
    workers = int(os.environ.get("FASTMATCH_BENCH_WORKERS", "0"))
    server = WebhookServer(cluster, TlsFiles(cert, key), host="127.0.0.1", port=0,
                           workers=workers)
    return server.serve_forever()


# -- the generator ------------------------------------------------------------------------


def review_bodies(n_caches: int = N_CACHES) -> list[bytes]:
    """AdmissionReview bodies for the synthetic cluster's pods, as the API server sends
    them (a Pod CREATE with userInfo, options and ``oldObject: null``)."""
    from workloads import cluster

    world = cluster(n_caches, N_PODS)
    bodies = []
    for i, images in enumerate(world.pods):
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"{world.pod_names[i]}-", "namespace": "default",
                         "labels": {"app": world.pod_names[i]}},
            "spec": {"containers": [{"name": f"c{k}", "image": image.ref,
                                     "imagePullPolicy": "IfNotPresent"}
                                    for k, image in enumerate(images)],
                     "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
        }
        request = {
            "uid": f"00000000-0000-4000-8000-{i:012d}",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod, "oldObject": None, "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        }
        bodies.append(json.dumps({"kind": "AdmissionReview",
                                  "apiVersion": "admission.k8s.io/v1",
                                  "request": request}).encode())
    return bodies


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Webhook:
    """The webhook process, with a CA and certificate made for the run."""

    def __init__(self, n_caches: int = N_CACHES, *, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="fastmatch-webhook-bench-")
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert_file = Path(self.folder.name, "tls.crt")
        key_file = Path(self.folder.name, "tls.key")
        cert_file.write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
        key_file.write_bytes(cert.private_key_pem.bytes())
        if env is None:
            env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}"
                   f"{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [*(prefix or []), sys.executable, __file__, "serve", str(cert_file),
             str(key_file), str(n_caches)],
            stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        self.port = 0
        for line in self.proc.stderr:  # bounded by the process: it ends if it dies
            found = re.search(r"serving on https://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                break
        if not self.port:
            raise RuntimeError("the webhook process did not start")
        self.context = ssl.create_default_context()
        self.ca.configure_trust(self.context)
        self._wait_ready(60.0)

    def _wait_ready(self, seconds: float) -> None:
        """Wait for /readyz to say 200: the API server sends reviews to ready pods only."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                               timeout=10)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
            time.sleep(0.05)
        raise RuntimeError("the webhook did not get ready")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mutate"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.folder.cleanup()


class _Connection(asyncio.Protocol):
    """One kept-alive HTTPS connection of the generator: a request's bytes written whole
    (built once per body), the answer read by its ``Content-Length``.  Far less Python
    than an HTTP client library's request, so that the generator's CPU, which the webhook
    shares the two cores with, stays small beside the webhook's."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        answer = (int(head[9:12]), bytes(self.buffer[end + 4:total]))
        del self.buffer[:total]
        waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the webhook closed the connection"))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


class _Pool:
    """Kept-alive connections, opened when none is free up to ``limit`` (as the API
    server's HTTP client opens another connection when its idle ones are busy)."""

    def __init__(self, webhook: Webhook, limit: int) -> None:
        self.webhook, self.limit = webhook, limit
        self.opened = 0
        self.freed: asyncio.Queue[_Connection] = asyncio.Queue()

    async def _open(self) -> _Connection:
        self.opened += 1
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection, "127.0.0.1", self.webhook.port, ssl=self.webhook.context,
            server_hostname="127.0.0.1")
        return connection

    async def take(self) -> _Connection:
        if not self.freed.empty():
            return self.freed.get_nowait()
        if self.opened < self.limit:
            return await self._open()
        return await self.freed.get()

    def give(self, connection: _Connection) -> None:
        if not connection.closed:
            self.freed.put_nowait(connection)
        else:
            self.opened -= 1



def _requests(webhook: Webhook, bodies: list[bytes]) -> list[bytes]:
    return [b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (webhook.port, len(body), body) for body in bodies]


async def _load(webhook: Webhook, bodies: list[bytes], rate: float, seconds: float,
                connections: int) -> LoadResult:
    n = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    requests = _requests(webhook, bodies)
    pool = _Pool(webhook, limit=max(connections, 64))
    # Warm the connections (TLS handshakes are not what is measured).
    warm = [await pool.take() for _ in range(connections)]
    for connection in warm:
        await connection.send(requests[0])
        pool.give(connection)

    async def one(i: int, due: float) -> None:
        nonlocal errors
        connection = None
        try:
            connection = await pool.take()
            status, answer = await asyncio.wait_for(
                connection.send(requests[i % len(requests)]), 10)
        except (OSError, ConnectionError, TimeoutError, ValueError):
            errors += 1
            if connection is not None:
                connection.closed = True
                pool.give(connection)
            return
        pool.give(connection)
        if status != 200 or b'"allowed":true' not in answer:
            errors += 1
            return
        latencies.append(time.perf_counter() - due)

    tasks = []
    cpu0, server0 = _self_cpu(), _proc_cpu(webhook.proc.pid)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    cpu1, server1 = _self_cpu(), _proc_cpu(webhook.proc.pid)
    while not pool.freed.empty():
        connection = pool.freed.get_nowait()
        if connection.transport is not None:
            connection.transport.close()
    return LoadResult(rate, wall, n, errors, latencies, (cpu1 - cpu0) / wall,
                      (server1 - server0) / wall, pool.opened)


def run_load(webhook: Webhook, bodies: list[bytes], rate: float, seconds: float = 5.0,
             connections: int = 8) -> LoadResult:
    """Send ``rate`` requests a second for ``seconds`` (open loop) and measure them."""
    return asyncio.run(_load(webhook, bodies, rate, seconds, connections))


def highest_rate(webhook: Webhook, bodies: list[bytes], *, p99_ms: float = 10.0,
                 seconds: float = 5.0, start: float = 100.0, step: float = 100.0,
                 top: float = 5000.0) -> tuple[float, list[LoadResult]]:
    """The highest rate (in ``step``s from ``start``) whose p99 stays under ``p99_ms`` with
    no errors, and every run it took to find it."""
    best, runs, rate = 0.0, [], start
    while rate <= top:
        result = run_load(webhook, bodies, rate, seconds)
        runs.append(result)
        if result.errors or result.percentile(99) * 1000 >= p99_ms:
            break
        best = rate
        rate += step
    return best, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[300, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--caches", type=int, default=N_CACHES)
    parser.add_argument("--no-search", action="store_true",
                        help="skip the search for the highest rate under 10 ms p99")
    args = parser.parse_args(argv)
    bodies = review_bodies(args.caches)
    webhook = Webhook(args.caches)
    try:
        for rate in args.rates:
            print(json.dumps(run_load(webhook, bodies, rate, args.seconds).row()), flush=True)
        if not args.no_search:
            best, runs = highest_rate(webhook, bodies, seconds=args.seconds)
            for run in runs:
                print(json.dumps({"search": True, **run.row()}), flush=True)
            print(json.dumps({"highest_rate_p99_under_10ms": best}))
    finally:
        webhook.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(serve(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    sys.exit(main())
