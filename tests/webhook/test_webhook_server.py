"""The webhook over real TLS (a CA and certificates made in the test): /mutate with
keep-alive, the probes, /metrics, every bad body, the body limit, a client that stops
mid-body, the time budget, failing open, the cache created once, TLS rotation."""

from __future__ import annotations

import gc
import json
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonpatch
import pytest
import trustme

from fastmatch.kube.admission import CACHE_ANNOTATION
from fastmatch.kube.autocreate import AutoCreator, create_with_client

from webhook_world import StandIn, example_world, patch_of, pod, post, ready_within, review

WEB_CACHE = "imc-2ze5tm5gehgtiiga8x3k"


class Recorder:
    """A creator that records what it is handed."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []

    def submit(self, obj: dict[str, Any]) -> bool:
        self.objects.append(obj)
        return True


def get(conn: Any, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_mutate_over_tls_with_keep_alive(serve, pki):
    running = serve(example_world())
    conn = running.connect(pki.client_context())
    obj = pod()
    status, answer = post(conn, review(obj, uid="u-1"))
    assert status == 200
    assert answer["response"]["uid"] == "u-1" and answer["response"]["allowed"] is True
    patched = jsonpatch.apply_patch(obj, patch_of(answer))
    assert patched["metadata"]["annotations"][CACHE_ANNOTATION] == WEB_CACHE
    first_socket = conn.sock
    for i in range(5):  # the same connection carries on (HTTP/1.1 keep-alive)
        status, answer = post(conn, review(pod(name=f"web-{i}"), uid=f"u-{i}"))
        assert status == 200 and answer["response"]["uid"] == f"u-{i}"
    assert conn.sock is first_socket
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()


def test_probes_follow_the_sync(serve, pki):
    world = StandIn(ready=False)
    running = serve(world)
    conn = running.connect(pki.client_context())
    assert get(conn, "/healthz")[0] == 200
    assert get(conn, "/readyz")[0] == 503
    gc.unfreeze()  # (another test's server may have frozen this process's objects)
    world.ready = True
    # Ready once the synced index is frozen out of the garbage collector (that pause
    # comes before the API server is told to send reviews, not in the middle of them).
    assert ready_within(conn)[-1] == (200, "ok\n")
    assert gc.get_freeze_count() > 0
    conn.close()


def test_metrics_count_requests_without_naming_pods_or_caches(serve, pki):
    running = serve(example_world())
    conn = running.connect(pki.client_context())
    post(conn, review(pod(name="web-secret-name")))
    post(conn, review(pod(["redis:7"], name="miss-0")))
    post(conn, b"not json")
    status, text = get(conn, "/metrics")
    assert status == 200
    for name in ("fastmatch_admission_requests_total", "fastmatch_admission_duration_seconds",
                 "fastmatch_decisions_total", "fastmatch_sync_events_total",
                 "fastmatch_sync_relists_total", "fastmatch_sync_lag_seconds",
                 "fastmatch_index_caches"):
        assert f"\n{name}" in text, name
    assert 'fastmatch_admission_requests_total{outcome="patched"} 2.0' in text
    assert 'fastmatch_admission_requests_total{outcome="bad_request"} 1.0' in text
    assert 'fastmatch_decisions_total{outcome="use"} 1.0' in text
    assert 'fastmatch_decisions_total{outcome="none"} 1.0' in text
    assert 'fastmatch_admission_duration_seconds_bucket{le="0.0005"}' in text
    assert 'fastmatch_admission_duration_seconds_bucket{le="2.5"}' in text
    assert "fastmatch_index_caches 7.0" in text
    for secret in ("web-secret-name", "miss-0", WEB_CACHE, "redis", "nginx"):
        assert secret not in text
    conn.close()


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "not JSON"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', "request"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}',
     "request.uid"),
    (b'{"kind": "Status", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u"}}',
     "kind"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", '
     b'"request": {"uid": "u"}}', "apiVersion"),
])
def test_bad_bodies_get_400_with_a_message_and_the_connection_carries_on(serve, pki, body,
                                                                         says):
    running = serve(example_world())
    conn = running.connect(pki.client_context())
    status, answer = post(conn, body)
    assert status == 400
    assert says in answer["error"]
    status, answer = post(conn, review(pod()))
    assert status == 200 and answer["response"]["allowed"] is True
    conn.close()


def test_a_body_over_3_mib_gets_413(serve, pki):
    running = serve(example_world())
    big = review(pod(annotations={"filler": "x" * (3 * 1024 * 1024)}))
    conn = running.connect(pki.client_context())
    status, answer = post(conn, big)
    assert status == 413 and "limit" in answer["error"]
    conn.close()
    # Without a Content-Length (chunked), the limit holds as the body arrives.
    conn = running.connect(pki.client_context())
    data = json.dumps(big).encode()
    conn.request("POST", "/mutate", body=iter([data[i:i + 65536]
                                               for i in range(0, len(data), 65536)]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    # Just under the limit is answered.
    fits = review(pod(annotations={"filler": "x" * (3 * 1024 * 1024 - 4096)}))
    conn = running.connect(pki.client_context())
    assert post(conn, fits)[0] == 200
    conn.close()


def test_a_client_that_stops_mid_body_is_timed_out_and_its_connection_freed(serve, pki):
    running = serve(example_world(), read_timeout=0.3)
    raw = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    tls = pki.client_context().wrap_socket(raw, server_hostname="localhost")
    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
                b"\r\nContent-Length: 5000\r\n\r\n{\"kind\": \"AdmissionRev")
    received = b""
    while chunk := tls.recv(65536):  # the server answers, then closes: recv gives b""
        received += chunk
    assert received.startswith(b"HTTP/1.1 408")
    tls.close()
    # The server carries on serving others.
    conn = running.connect(pki.client_context())
    assert post(conn, review(pod()))[0] == 200
    conn.close()


def test_past_the_budget_the_pod_is_admitted_unchanged(serve, pki):
    release = threading.Event()

    class Slow(StandIn):
        def match_pod(self, pod_obj: Any, **kwargs: Any) -> Any:
            release.wait(10)  # a decision stuck (a lock held, a registry call...)
            return super().match_pod(pod_obj, **kwargs)

    creator = Recorder()
    running = serve(Slow(), budget_ms=50, creator=creator, workers=2)
    conn = running.connect(pki.client_context())
    try:
        status, answer = post(conn, review(pod(["redis:7"])))
    finally:
        release.set()
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "budget" in response["warnings"][0]
    assert creator.objects == []  # a late decision creates nothing
    conn.close()


def test_a_decision_that_fails_is_admitted_unchanged(serve, pki):
    class Broken(StandIn):
        def match_pod(self, pod_obj: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the index is broken")

    running = serve(Broken())
    conn = running.connect(pki.client_context())
    status, answer = post(conn, review(pod()))
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "internal error" in response["warnings"][0]
    assert "the index is broken" not in response["warnings"][0]  # no internals to users
    conn.close()


def test_a_dry_run_hands_nothing_to_the_creator(serve, pki):
    creator = Recorder()
    running = serve(example_world(), creator=creator)
    conn = running.connect(pki.client_context())
    assert post(conn, review(pod(["redis:7"]), dry_run=True))[0] == 200
    assert creator.objects == []
    assert post(conn, review(pod(["redis:7"])))[0] == 200
    assert [o["spec"]["images"] for o in creator.objects] == [["docker.io/library/redis:7"]]
    conn.close()


def test_ten_replicas_through_two_webhooks_create_the_cache_once(serve, pki, fake_api):
    creators = [AutoCreator(create_with_client(fake_api.api_client())) for _ in range(2)]
    servers = []
    for creator in creators:
        creator.start()
        servers.append(serve(example_world(), creator=creator))

    def admit_replica(i: int) -> int:
        conn = servers[i % 2].connect(pki.client_context())
        try:
            obj = pod(["redis:7", "memcached:1.6"], name=None, generate_name="cache-5d8f-")
            status, answer = post(conn, review(obj))
            assert answer["response"]["allowed"] is True
            return status
        finally:
            conn.close()

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(admit_replica, range(10))) == [200] * 10
    for creator in creators:
        assert creator.drain(10)
        creator.stop()
    assert len(fake_api.objects) == 1
    (name, obj), = fake_api.objects.items()
    assert name.startswith("auto-create-for-memcached-")
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fastmatch"
    assert 1 <= len(fake_api.posts) <= 2  # at most one call per webhook process
    assert sum(c.created for c in creators) == 1
    assert sum(c.existed for c in creators) == len(fake_api.posts) - 1


def test_tls_rotation_is_picked_up_without_a_dropped_request(serve, pki):
    running = serve(example_world())
    new_ca = trustme.CA()
    both = pki.client_context()
    new_ca.configure_trust(both)
    errors: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def load() -> None:  # new connections and kept-alive ones, all through the rotation
        while not stop.is_set():
            conn = running.connect(both)
            try:
                for _ in range(3):
                    status, _answer = post(conn, review(pod()))
                    assert status == 200
                    answered[0] += 1
            except BaseException as exc:  # reported below, in the test thread
                errors.append(exc)
                return
            finally:
                conn.close()

    worker = threading.Thread(target=load)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while answered[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        pki.issue(new_ca)  # cert-manager writes the renewed pair in place
        only_new = pki.client_context(new_ca)
        served_new = False
        while not served_new and time.monotonic() < deadline:
            try:
                conn = running.connect(only_new, timeout=2)
                served_new = post(conn, review(pod()))[0] == 200
                conn.close()
            except ssl.SSLError:
                time.sleep(0.02)  # not reloaded yet
        before = answered[0]
        while answered[0] < before + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(10)
    assert served_new, "the new certificate was never served"
    assert errors == []
    assert running.server.tls.reloads == 1
    # The old CA no longer verifies new connections.
    with pytest.raises(ssl.SSLError):
        conn = running.connect(pki.client_context(), timeout=2)
        conn.request("GET", "/healthz")


def test_one_structured_debug_line_per_decision(serve, pki, caplog):
    running = serve(example_world())
    conn = running.connect(pki.client_context())
    with caplog.at_level(logging.DEBUG, logger="fastmatch.webhook"):
        post(conn, review(pod(["redis:7"]), uid="u-log"))
    conn.close()
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.levelno == logging.DEBUG and r.getMessage().startswith("{")]
    assert len(lines) == 1
    line = lines[0]
    assert line["uid"] == "u-log" and line["outcome"] == "patched"
    assert line["decision"] == "none" and line["create"].startswith("auto-create-for-redis-")


def test_a_half_written_certificate_pair_keeps_the_old_one_serving(serve, pki):
    running = serve(example_world(), reload_interval=3600)  # reloaded by hand below
    tls = running.server.tls
    good_key = pki.key_file.read_bytes()
    pki.key_file.write_bytes(good_key[: len(good_key) // 2])  # cut mid-write
    assert tls.reload_if_changed() is False and tls.reloads == 0
    conn = running.connect(pki.client_context())
    assert post(conn, review(pod()))[0] == 200  # still the old certificate
    conn.close()
    new_ca = trustme.CA()
    pki.issue(new_ca)
    assert tls.reload_if_changed() is True and tls.reloads == 1
    assert tls.reload_if_changed() is False  # nothing changed since
    conn = running.connect(pki.client_context(new_ca))
    assert post(conn, review(pod()))[0] == 200
    conn.close()


def test_on_the_event_loop_a_decision_that_ends_past_the_budget_is_dropped(serve, pki):
    creator = Recorder()
    running = serve(StandIn(delay=0.1), budget_ms=20, creator=creator)  # workers=0
    conn = running.connect(pki.client_context())
    status, answer = post(conn, review(pod(["redis:7"])))
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "budget" in response["warnings"][0]
    assert creator.objects == []
    conn.close()


def test_metrics_count_the_caches_created(serve, pki, fake_api):
    creator = AutoCreator(create_with_client(fake_api.api_client()))
    creator.start()
    try:
        running = serve(example_world(), creator=creator)
        conn = running.connect(pki.client_context())
        post(conn, review(pod(["redis:7"])))
        assert creator.drain(10)
        status, text = get(conn, "/metrics")
        conn.close()
    finally:
        creator.stop()
    assert status == 200
    assert 'fastmatch_autocreate_total{result="created"} 1.0' in text
    assert 'fastmatch_autocreate_total{result="failed"} 0.0' in text
