"""Faults a real registry will not produce on demand: rate limits, server errors,
malformed and unsupported manifests, digest mismatches; and the concurrency bound."""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Callable, Iterator

import pytest
from registry_servers import FakeRegistry, Reply

from fastmatch.errors import ValidationError
from fastmatch.registry import (
    ManifestError,
    ReferenceNotFoundError,
    RegistryConfig,
    RegistryUnavailableError,
    Resolver,
    UnauthorizedError,
)
from fastmatch.registry.manifest import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

LAYER = "sha256:" + "1" * 64
CONFIG = "sha256:" + "2" * 64


def manifest(n: int = 1) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": CONFIG, "size": 100},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": LAYER, "size": 1000 + n}],
    }).encode()


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def ok(body: bytes, media_type: str = DOCKER_MANIFEST) -> Reply:
    return 200, {"Content-Type": media_type, "Docker-Content-Digest": digest_of(body)}, body


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeRegistry]]:
    started: list[FakeRegistry] = []

    def start(route: Callable[[str, str, dict[str, str]], Reply], delay: float = 0.0
              ) -> FakeRegistry:
        server = FakeRegistry(route, delay)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def resolver(server: FakeRegistry, **kwargs: object) -> Resolver:
    config = RegistryConfig.build(plain_http=[server.host], docker_config=False)
    options = {"retries": 3, "backoff": 0.01, **kwargs}
    return Resolver(config, **options)  # type: ignore[arg-type]


def test_429_waits_for_retry_after(fake: Callable[..., FakeRegistry]) -> None:
    calls = []

    def route(method: str, path: str, headers: dict[str, str]) -> Reply:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return 429, {"Retry-After": "1"}, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}'
        return ok(manifest())

    server = fake(route)
    with resolver(server) as r:
        image = r.resolve(f"{server.host}/app:1")
    assert image.layers[0].size == 1001
    assert calls[1] - calls[0] >= 0.9


def test_retry_after_as_an_http_date_is_honoured(fake: Callable[..., FakeRegistry]) -> None:
    calls = []

    def route(method: str, path: str, headers: dict[str, str]) -> Reply:
        calls.append(time.monotonic())
        if len(calls) == 1:
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return 503, {"Retry-After": when}, b""
        return ok(manifest())

    server = fake(route)
    with resolver(server) as r:
        r.resolve(f"{server.host}/app:1")
    assert calls[1] - calls[0] >= 0.5


def test_retry_after_is_capped(fake: Callable[..., FakeRegistry]) -> None:
    def route(method: str, path: str, headers: dict[str, str]) -> Reply:
        return 429, {"Retry-After": "3600"}, b""

    server = fake(route)
    started = time.monotonic()
    with resolver(server, retries=2, max_retry_wait=0.1) as r, \
            pytest.raises(RegistryUnavailableError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert time.monotonic() - started < 5
    assert "429" in str(caught.value) and server.host in str(caught.value)


def test_5xx_retried_then_reported(fake: Callable[..., FakeRegistry]) -> None:
    server = fake(lambda m, p, h: (503, {}, b"down for maintenance"))
    with resolver(server, retries=2) as r, pytest.raises(RegistryUnavailableError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert server.count == 3
    assert "HTTP 503" in str(caught.value) and "after 2 retries" in str(caught.value)


def test_a_transient_5xx_is_invisible(fake: Callable[..., FakeRegistry]) -> None:
    answers = iter([(502, {}, b""), (500, {}, b"")])
    server = fake(lambda m, p, h: next(answers, None) or ok(manifest()))
    with resolver(server) as r:
        assert r.resolve(f"{server.host}/app:1").layers


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (b"{not json", DOCKER_MANIFEST, "not JSON"),
        (b"[1, 2]", DOCKER_MANIFEST, "not a JSON object"),
        (b"[" * 100_000, DOCKER_MANIFEST, "nested too deeply"),
        (b'{"schemaVersion": 2' + b"0" * 5000 + b"}", DOCKER_MANIFEST, "number too long"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "config": {"digest": CONFIG, "size": 1},
                     "layers": [{"digest": LAYER, "size": 2**70}]}).encode(),
         OCI_MANIFEST, "larger than"),
        (json.dumps({"schemaVersion": 1, "name": "app", "fsLayers": []}).encode(),
         "application/vnd.docker.distribution.manifest.v1+prettyjws", "schema 1"),
        (json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example+json"}).encode(),
         "application/vnd.example+json", "unsupported manifest media type"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}}).encode(),
         OCI_MANIFEST, "'layers' is missing"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "config": {"digest": CONFIG, "size": 1},
                     "layers": [{"digest": "sha256:short", "size": 1}]}).encode(),
         OCI_MANIFEST, "layers[0]: invalid digest"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "config": {"digest": CONFIG, "size": 1},
                     "layers": [{"digest": LAYER, "size": -1}]}).encode(),
         OCI_MANIFEST, "negative size"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "config": {"digest": CONFIG, "size": 1}, "layers": []}).encode(),
         OCI_MANIFEST, "no layers"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}).encode(),
         OCI_INDEX, "'manifests' is missing or not a list"),
    ],
)
def test_malformed_or_unsupported_manifests(
    fake: Callable[..., FakeRegistry], body: bytes, media_type: str, message: str
) -> None:
    server = fake(lambda m, p, h: ok(body, media_type))
    with resolver(server) as r, pytest.raises(ManifestError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert message in str(caught.value)
    assert f"{server.host}/app:1" in str(caught.value) and server.host in str(caught.value)


def test_digest_announced_by_the_registry_must_match(fake: Callable[..., FakeRegistry]) -> None:
    server = fake(lambda m, p, h: (200, {"Content-Type": DOCKER_MANIFEST,
                                         "Docker-Content-Digest": "sha256:" + "9" * 64},
                                   manifest()))
    with resolver(server) as r, pytest.raises(ManifestError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert "digest mismatch" in str(caught.value)


def test_content_fetched_by_digest_must_match_it(fake: Callable[..., FakeRegistry]) -> None:
    server = fake(lambda m, p, h: (200, {"Content-Type": DOCKER_MANIFEST}, manifest()))
    wanted = "sha256:" + "8" * 64
    with resolver(server) as r, pytest.raises(ManifestError) as caught:
        r.resolve(f"{server.host}/app@{wanted}")
    assert f"asked for {wanted}" in str(caught.value)


def test_an_index_inside_an_index_is_unsupported(fake: Callable[..., FakeRegistry]) -> None:
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    outer = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": digest_of(inner), "size": len(inner),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()

    def route(method: str, path: str, headers: dict[str, str]) -> Reply:
        return ok(inner, OCI_INDEX) if digest_of(inner) in path else ok(outer, OCI_INDEX)

    server = fake(route)
    with resolver(server) as r, pytest.raises(ManifestError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert "itself an index" in str(caught.value)


def test_401_without_a_challenge(fake: Callable[..., FakeRegistry]) -> None:
    server = fake(lambda m, p, h: (401, {}, b""))
    with resolver(server) as r, pytest.raises(UnauthorizedError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert "no usable WWW-Authenticate" in str(caught.value)


def test_the_accept_header_asks_for_every_supported_type(
    fake: Callable[..., FakeRegistry]
) -> None:
    seen: list[str] = []

    def route(method: str, path: str, headers: dict[str, str]) -> Reply:
        seen.append(headers.get("accept", ""))
        return ok(manifest())

    server = fake(route)
    with resolver(server) as r:
        r.resolve(f"{server.host}/app:1")
    accept = seen[0]
    for media_type in (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST,
                       "application/vnd.docker.distribution.manifest.list.v2+json"):
        assert media_type in accept


def test_requests_in_flight_are_bounded(fake: Callable[..., FakeRegistry]) -> None:
    bodies = {f"/v2/app/manifests/t{i}": manifest(i) for i in range(24)}
    server = fake(lambda m, p, h: ok(bodies[p]), delay=0.05)
    with resolver(server, max_concurrency=3) as r:
        started = time.monotonic()
        report = r.resolve_many([f"{server.host}/app:t{i}" for i in range(24)])
        elapsed = time.monotonic() - started
    assert report.ok and len(report.images) == 24
    assert server.max_in_flight == 3
    assert elapsed < 24 * 0.05  # concurrent, not one by one


def test_duplicates_are_resolved_once(fake: Callable[..., FakeRegistry]) -> None:
    server = fake(lambda m, p, h: ok(manifest()))
    with resolver(server) as r:
        report = r.resolve_many([f"{server.host}/app:1", f"{server.host}/app:1",
                                 f"{server.host}/app"])
    assert [i.ref for i in report.images] == [f"{server.host}/app:1", f"{server.host}/app:latest"]
    assert server.count == 2


def test_an_unreadable_error_body_is_still_a_clear_answer(
    fake: Callable[..., FakeRegistry]
) -> None:
    server = fake(lambda m, p, h: (404, {"Content-Type": "application/json"}, b"[" * 100_000))
    with resolver(server) as r, pytest.raises(ReferenceNotFoundError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert f"{server.host}/app:1" in str(caught.value)


@pytest.mark.parametrize("location", ["http://[::1/v2/", "ftp://mirror.example/x"])
def test_a_redirect_to_an_unusable_location(
    fake: Callable[..., FakeRegistry], location: str
) -> None:
    server = fake(lambda m, p, h: (307, {"Location": location}, b""))
    with resolver(server) as r, pytest.raises(RegistryUnavailableError) as caught:
        r.resolve(f"{server.host}/app:1")
    assert "unusable location" in str(caught.value) and location in str(caught.value)


def test_a_token_realm_that_is_not_a_url(fake: Callable[..., FakeRegistry]) -> None:
    challenge = 'Bearer realm="http://[::1/token",service="r"'
    server = fake(lambda m, p, h: (401, {"WWW-Authenticate": challenge}, b""))
    with resolver(server) as r, pytest.raises(UnauthorizedError, match="bad token realm"):
        r.resolve(f"{server.host}/app:1")


@pytest.mark.parametrize(
    "options",
    [{"timeout": -1}, {"timeout": float("nan")}, {"timeout": 1e12}, {"backoff": -0.5},
     {"max_retry_wait": float("inf")}, {"max_concurrency": 0}, {"max_concurrency": 10**6},
     {"retries": -1}, {"retries": 2.5}, {"tag_ttl": float("nan")}, {"tag_ttl": -1}],
)
def test_bad_resolver_settings_are_refused_when_given(options: dict[str, object]) -> None:
    name = next(iter(options))
    with pytest.raises(ValidationError, match=name) as caught:
        Resolver(**options)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def test_resolve_many_refuses_a_single_string() -> None:
    with Resolver(offline=True) as r, pytest.raises(ValidationError, match="not one string"):
        r.resolve_many("nginx:1.25")
