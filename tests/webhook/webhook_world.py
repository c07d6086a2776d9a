"""The webhook's test world: a stand-in for the cluster index, AdmissionReviews as the API
server sends them, certificates made here, and the server run on a thread of its own."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trustme

import fastmatch as fm
from fastmatch.inputs import PodRequest, read_caches, read_catalog, read_profile
from fastmatch.kube.server import TlsFiles, WebhookServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = "2026-12-01T00:00:00Z"  # the examples' caches are Ready and unexpired then


class StandIn:
    """The cluster index's face (``ready``, ``index``, ``match_pod``, ``stats``) over a real
    CacheIndex, decided at a fixed time; ``delay`` makes each decision that slow."""

    def __init__(self, caches: list[fm.ImageCache] | None = None, *, catalog: Any = None,
                 profile: Any = None, ready: bool = True, delay: float = 0.0,
                 now: str = NOW) -> None:
        self.index = fm.CacheIndex(caches or [])
        self.catalog = catalog
        self.profile = profile
        self.ready = ready
        self.delay = delay
        self.now = now
        self.calls = 0

    def match_pod(self, pod_obj: Mapping[str, Any], *,
                  namespace_labels: Mapping[str, str] | None = None) -> fm.MatchResult:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        request = PodRequest.from_object(pod_obj, catalog=self.catalog, profile=self.profile,
                                         namespace_labels=namespace_labels)
        return self.index.match_pod(request, now=self.now)

    def stats(self) -> dict[str, float]:
        return {"events_applied": 12, "relists": 1, "lag_seconds": 0.25, "queue_depth": 0,
                "caches": len(self.index), "resolve_failures": 0}


def example_world(**kwargs: Any) -> StandIn:
    """The examples' caches, catalog and eci-profile behind a stand-in."""
    catalog = read_catalog(str(EXAMPLES / "catalog.jsonl"))
    caches = read_caches([str(EXAMPLES / "imagecaches.json"),
                          str(EXAMPLES / "describe-image-caches.json")],
                         catalog=catalog, now=NOW)
    profile = read_profile(str(EXAMPLES / "eci-profile.yaml"))
    return StandIn(caches, catalog=catalog, profile=profile, **kwargs)


def pod(images: list[str] | tuple[str, ...] = ("nginx:1.14.2", "busybox:1.30"), *,
        name: str | None = "web-0", generate_name: str | None = None,
        namespace: str = "default", annotations: Mapping[str, str] | None = None,
        pull_policy: str = "IfNotPresent") -> dict[str, Any]:
    """A Pod as the API server hands it to a mutating webhook (defaults applied)."""
    meta: dict[str, Any] = {"namespace": namespace, "labels": {"app": "web"}}
    if name is not None:
        meta["name"] = name
    if generate_name is not None:
        meta["generateName"] = generate_name
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    containers = [
        {"name": f"c{i}", "image": image, "imagePullPolicy": pull_policy,
         "resources": {}, "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "File"}
        for i, image in enumerate(images)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": containers, "restartPolicy": "Always",
                 "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
                 "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
                 "priority": 0, "securityContext": {}},
        "status": {},
    }


def review(obj: Mapping[str, Any] | None, *, uid: str | None = None, dry_run: bool = False,
           operation: str = "CREATE", resource: str = "pods",
           namespace: str | None = None) -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview for ``obj``, as kube-apiserver sends it."""
    meta = (obj or {}).get("metadata", {})
    ns = namespace if namespace is not None else meta.get("namespace", "default")
    kind = {"group": "", "version": "v1", "kind": "Pod" if resource == "pods" else "Thing"}
    res = {"group": "", "version": "v1", "resource": resource}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": kind,
            "resource": res,
            "requestKind": kind,
            "requestResource": res,
            "name": meta.get("name", ""),
            "namespace": ns,
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "6f1f3a6e-1e0b-4f3e-9c59-2b1b1f0b7c11",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                           "system:authenticated"],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                        **({"dryRun": ["All"]} if dry_run else {})},
        },
    }


def patch_of(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch of an AdmissionReview response (``[]`` when it has none)."""
    body = response["response"]
    if "patch" not in body:
        assert "patchType" not in body
        return []
    assert body["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(body["patch"]))
    return patch


class Pki:
    """A CA made for the test and a server certificate from it, as files."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.cert_file = folder / "tls.crt"
        self.key_file = folder / "tls.key"
        self.issue()

    def issue(self, ca: trustme.CA | None = None) -> None:
        """Write a new certificate (from ``ca``, default the test's CA) over the files."""
        cert = (ca or self.ca).issue_cert("localhost", "127.0.0.1",
                                          "fastmatch-webhook.fastmatch.svc")
        self.key_file.write_bytes(cert.private_key_pem.bytes())
        self.cert_file.write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))

    def client_context(self, ca: trustme.CA | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        (ca or self.ca).configure_trust(ctx)
        return ctx

    def tls(self) -> TlsFiles:
        return TlsFiles(str(self.cert_file), str(self.key_file))


class Running:
    """A WebhookServer served from an event loop on a thread of its own."""

    def __init__(self, server: WebhookServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)
        self.port = server.port

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def connect(self, ctx: ssl.SSLContext, timeout: float = 10.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)


def post(conn: http.client.HTTPConnection, body: bytes | dict[str, Any],
         path: str = "/mutate") -> tuple[int, Any]:
    """POST ``body`` on ``conn`` (kept alive); the status and the decoded JSON answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode()


def ready_within(conn: http.client.HTTPConnection, seconds: float = 5.0) -> list[tuple[int, str]]:
    """GET /readyz on ``conn`` until it answers 200 or ``seconds`` pass: every distinct
    (status, text) seen, in order."""
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + seconds
    while True:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        answer = (response.status, response.read().decode())
        if not seen or seen[-1] != answer:
            seen.append(answer)
        if answer[0] == 200 or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)


class FakeImageCacheApi:
    """Just enough of an API server for creating ImageCaches: POST stores a new name (201)
    and answers 409 with a Status for a name it has; every POST is recorded."""

    def __init__(self) -> None:
        import http.server

        self.objects: dict[str, dict[str, Any]] = {}
        self.posts: list[str] = []
        self.lock = threading.Lock()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                obj = json.loads(self.rfile.read(length))
                name = obj["metadata"]["name"]
                with api.lock:
                    api.posts.append(name)
                    exists = name in api.objects
                    if not exists:
                        api.objects[name] = obj
                if self.path != "/apis/eci.alibabacloud.com/v1/imagecaches":
                    code, body = 404, {"kind": "Status", "code": 404}
                elif exists:
                    code, body = 409, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "reason": "AlreadyExists", "code": 409,
                                       "message": f'imagecaches "{name}" already exists'}
                else:
                    code, body = 201, obj
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def api_client(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
