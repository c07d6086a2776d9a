"""The webhook end to end with the real cluster sync behind it: ClusterIndex following the
API-server fixture of the sync (tests/kube/apiserver.py) through the official client, the
examples' ImageCaches, eci-profile and namespaces in it, and the proposed caches created there.

Skipped where the sync is not part of the tree yet (the branch that brings it merges later).
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from fastmatch.inputs import read_catalog
from fastmatch.kube import ClusterIndex
from fastmatch.kube.admission import CACHE_ANNOTATION, DECISION_ANNOTATION
from fastmatch.kube.autocreate import AutoCreator, create_with_client

from webhook_world import EXAMPLES, patch_of, pod, post, ready_within, review

KUBE_TESTS = Path(__file__).resolve().parents[1] / "kube"
sys.path.insert(0, str(KUBE_TESTS))
from apiserver import FakeApiServer  # noqa: E402 - the cluster tests' fake API server

WEB_CACHE = "imc-2ze5tm5gehgtiiga8x3k"


@pytest.fixture
def cluster() -> Iterator[tuple[Any, Any]]:
    server = FakeApiServer()
    server.start()
    try:
        for item in json.loads((EXAMPLES / "imagecaches.json").read_text())["items"]:
            meta = item["metadata"]
            item["metadata"] = {k: meta[k] for k in ("name", "labels", "annotations") if k in meta}
            server.create("imagecaches", item)
        server.create("configmaps", yaml.safe_load((EXAMPLES / "eci-profile.yaml").read_text()))
        for ns in yaml.safe_load((EXAMPLES / "namespaces.yaml").read_text())["items"]:
            server.create("namespaces", ns)
        ci = ClusterIndex(server.api_client(),
                               catalog=read_catalog(str(EXAMPLES / "catalog.jsonl")))
        yield server, ci
    finally:
        server.stop()


def test_the_webhook_over_the_cluster_sync(cluster, serve, pki):
    server, ci = cluster
    creator = AutoCreator(create_with_client(server.api_client()))
    running = serve(ci, creator=creator)
    conn = running.connect(pki.client_context())
    try:
        # Before the first sync: ready says no, and pods go through unchanged.
        conn.request("GET", "/readyz")
        not_ready = conn.getresponse()
        assert not_ready.status == 503 and not_ready.read()
        status, answer = post(conn, review(pod()))
        assert status == 200 and patch_of(answer) == []
        creator.start()
        ci.start()
        assert ci.wait_ready(timeout=20)
        assert ready_within(conn)[-1] == (200, "ok\n")

        # ECI's documented Deployment: the cache of both images.
        obj = pod(name=None, generate_name="web-6d4cf56db6-",
                  annotations={"k8s.aliyun.com/imc-perfect-match": "true"})
        status, answer = post(conn, review(obj))
        patched = jsonpatch.apply_patch(obj, patch_of(answer))
        assert patched["metadata"]["annotations"][CACHE_ANNOTATION] == WEB_CACHE

        # A miss: the cache is created in the cluster, once, labelled as fastmatch's.
        miss = pod(["redis:7"], name=None, generate_name="cache-7c9d-")
        status, answer = post(conn, review(miss, dry_run=True))
        assert status == 200
        assert creator.drain(10) and server.objects("imagecaches") and not any(
            o["metadata"]["name"].startswith("auto-create-for-redis")
            for o in server.objects("imagecaches"))  # a dry run creates nothing
        for _ in range(3):
            status, answer = post(conn, review(miss))
            assert status == 200
        assert creator.drain(10)
        made = [o for o in server.objects("imagecaches")
                if o["metadata"]["name"].startswith("auto-create-for-redis")]
        assert len(made) == 1
        assert made[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fastmatch"
        assert made[0]["spec"]["images"] == ["docker.io/library/redis:7"]

        # Once the sync has it (no phase yet: being created), later replicas propose nothing.
        deadline = time.monotonic() + 10
        name = made[0]["metadata"]["name"]
        while name not in ci.index and time.monotonic() < deadline:
            time.sleep(0.02)
        assert name in ci.index
        status, answer = post(conn, review(pod(["redis:7"], name="cache-7c9d-x")))
        found = json.loads(jsonpatch.apply_patch(
            pod(["redis:7"], name="cache-7c9d-x"), patch_of(answer)
        )["metadata"]["annotations"][DECISION_ANNOTATION])
        assert found["create"] is None
        assert any("being built" in w for w in answer["response"]["warnings"])
    finally:
        conn.close()
        creator.stop()
        ci.stop()


def test_fastmatch_webhook_as_a_user_runs_it(cluster, pki, tmp_path):
    server, _ci = cluster
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastmatch", "webhook", "--kubeconfig", str(kubeconfig),
         "--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file), "--host",
         "127.0.0.1", "--port", "0", "--catalog", str(EXAMPLES / "catalog.jsonl")],
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        port = 0
        for line in proc.stderr:  # ends if the process dies
            found = re.search(r"serving on https://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "fastmatch webhook did not start"
        ctx = pki.client_context()
        deadline = time.monotonic() + 20
        status = 0
        while status != 200 and time.monotonic() < deadline:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            status = response.status
            response.read()
            conn.close()
            if status != 200:
                time.sleep(0.05)
        assert status == 200
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        obj = pod()
        status, answer = post(conn, review(obj))
        conn.close()
        patched = jsonpatch.apply_patch(obj, patch_of(answer))
        assert patched["metadata"]["annotations"][CACHE_ANNOTATION] == WEB_CACHE
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
