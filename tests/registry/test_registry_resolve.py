"""Resolving against real registries: every transport, auth and manifest kind."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from registry_world import PASSWORD, REFRESH_TOKEN, USER, World

from fastmatch.model import Image, Layer
from fastmatch.registry import (
    Credentials,
    PlatformNotFoundError,
    ReferenceNotFoundError,
    RegistryConfig,
    RegistryOptions,
    RegistryUnreachableError,
    Resolver,
    UnauthorizedError,
)

pytestmark = pytest.mark.registry


def expected_image(world: World, host: str, repo_tag: str, platform: str = "linux/amd64") -> Image:
    exp = world.expected[repo_tag]
    return Image(f"{host}/{repo_tag}", [Layer(d, s) for d, s in exp.layers[platform]],
                 digest=exp.digest)


def plain(world: World, **kwargs: object) -> Resolver:
    config = RegistryConfig.build(plain_http=[world.plain.host, world.token.host],
                                  ca_file=str(world.pki.ca_cert), docker_config=False)
    return Resolver(config, **kwargs)  # type: ignore[arg-type]


# Manifest kinds ---------------------------------------------------------------------


@pytest.mark.parametrize("repo_tag", ["app:1.0", "app:1.1", "docker/app:1.0"])
def test_single_platform_images_resolve_to_their_layers(world: World, repo_tag: str) -> None:
    with plain(world) as resolver:
        image = resolver.resolve(f"{world.plain.host}/{repo_tag}")
    assert image == expected_image(world, world.plain.host, repo_tag)


@pytest.mark.parametrize("repo_tag", ["multi:1.0", "docker/multi:1.0"])
@pytest.mark.parametrize(
    ("platform", "expect"),
    [("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64/v8"),
     ("linux/arm64/v8", "linux/arm64/v8"), ("linux/arm/v7", "linux/arm/v7"),
     ("linux/aarch64", "linux/arm64/v8"), ("windows/amd64", "windows/amd64")],
)
def test_multi_platform_images_choose_the_platform(
    world: World, repo_tag: str, platform: str, expect: str
) -> None:
    ref = f"{world.plain.host}/{repo_tag}"
    with plain(world) as resolver:
        resolution = resolver.resolve_one(ref, platform=platform)
    assert resolution.image == expected_image(world, world.plain.host, repo_tag, expect)
    assert resolution.platform == expect
    # The image is identified by what the tag points to (the index), not the child manifest.
    assert resolution.image.digest == world.expected[repo_tag].digest
    assert resolution.manifest_digest != resolution.image.digest


def test_platform_default_comes_from_the_resolver(world: World) -> None:
    with plain(world, platform="linux/arm/v7") as resolver:
        image = resolver.resolve(f"{world.plain.host}/multi:1.0")
    assert image == expected_image(world, world.plain.host, "multi:1.0", "linux/arm/v7")


def test_missing_platform_names_the_ones_offered(world: World) -> None:
    with plain(world) as resolver, pytest.raises(PlatformNotFoundError) as caught:
        resolver.resolve(f"{world.plain.host}/multi:1.0", platform="linux/s390x")
    message = str(caught.value)
    assert "linux/s390x" in message and "linux/arm64/v8" in message
    assert world.plain.host in message and "multi:1.0" in message


def test_reference_by_index_digest_and_by_platform_manifest_digest(world: World) -> None:
    exp = world.expected["multi:1.0"]
    host = world.plain.host
    with plain(world) as resolver:
        by_index = resolver.resolve_one(f"{host}/multi@{exp.digest}")
        child = resolver.resolve_one(f"{host}/multi:1.0", platform="linux/arm64").manifest_digest
        assert child is not None
        by_child = resolver.resolve(f"{host}/multi@{child}")
    assert by_index.image.ref == f"{host}/multi@{exp.digest}"
    assert by_index.image.layers == expected_image(world, host, "multi:1.0").layers
    assert by_child.digest == child
    assert by_child.layers == expected_image(world, host, "multi:1.0", "linux/arm64/v8").layers


def test_tag_and_digest_reference_is_identified_by_digest(world: World) -> None:
    exp = world.expected["app:1.0"]
    with plain(world) as resolver:
        image = resolver.resolve(f"{world.plain.host}/app:1.0@{exp.digest}")
    assert image.ref == f"{world.plain.host}/app@{exp.digest}"
    assert image.digest == exp.digest


# Errors -------------------------------------------------------------------------------


def test_unknown_repository(world: World) -> None:
    with plain(world) as resolver, pytest.raises(ReferenceNotFoundError) as caught:
        resolver.resolve(f"{world.plain.host}/nothing/here:1")
    assert "repository nothing/here not found" in str(caught.value)
    assert caught.value.registry == world.plain.host
    assert caught.value.reference == f"{world.plain.host}/nothing/here:1"


def test_unknown_tag(world: World) -> None:
    with plain(world) as resolver, pytest.raises(ReferenceNotFoundError) as caught:
        resolver.resolve(f"{world.plain.host}/app:9.9")
    assert "tag 9.9 not found in app" in str(caught.value)
    assert world.plain.host in str(caught.value)


def test_unknown_digest(world: World) -> None:
    digest = "sha256:" + "0" * 64
    with plain(world) as resolver, pytest.raises(ReferenceNotFoundError) as caught:
        resolver.resolve(f"{world.plain.host}/app@{digest}")
    assert f"digest {digest} not found" in str(caught.value)


def test_unreachable_registry(world: World) -> None:
    from registry_servers import free_port

    host = f"127.0.0.1:{free_port()}"
    config = RegistryConfig.build(plain_http=[host], docker_config=False)
    with Resolver(config, retries=1, backoff=0.01) as resolver, \
            pytest.raises(RegistryUnreachableError) as caught:
        resolver.resolve(f"{host}/app:1.0")
    assert "connection refused" in str(caught.value)
    assert host in str(caught.value) and "app:1.0" in str(caught.value)


def test_https_to_a_plain_http_registry_is_a_clear_error(world: World) -> None:
    config = RegistryConfig.build(docker_config=False)
    with Resolver(config, retries=0) as resolver, \
            pytest.raises(RegistryUnreachableError) as caught:
        resolver.resolve(f"{world.plain.host}/app:1.0")
    assert "plain-HTTP" in str(caught.value)


# TLS ------------------------------------------------------------------------------------


def test_tls_with_the_ca_bundle(world: World) -> None:
    config = RegistryConfig.build(ca_file=str(world.pki.ca_cert), docker_config=False)
    with Resolver(config) as resolver:
        image = resolver.resolve(f"{world.tls.host}/multi:1.0")
    assert image == expected_image(world, world.tls.host, "multi:1.0")


def test_tls_ca_bundle_given_per_registry(world: World) -> None:
    config = RegistryConfig.build(ca_files={world.tls.host: str(world.pki.ca_cert)},
                                  docker_config=False)
    with Resolver(config) as resolver:
        assert resolver.resolve(f"{world.tls.host}/app:1.0").layers


def test_tls_with_an_untrusted_certificate_fails_without_retrying(world: World) -> None:
    config = RegistryConfig.build(ca_file=str(world.pki.other_ca_cert), docker_config=False)
    with Resolver(config) as resolver, pytest.raises(RegistryUnreachableError) as caught:
        resolver.resolve(f"{world.tls.host}/app:1.0")
    assert "not trusted" in str(caught.value) and "--ca-file" in str(caught.value)
    assert resolver.client.requests == 0


def test_insecure_registry_skips_verification(world: World) -> None:
    config = RegistryConfig.build(insecure=[world.tls.host], docker_config=False)
    with Resolver(config) as resolver:
        image = resolver.resolve(f"{world.tls.host}/app:1.0")
    assert image == expected_image(world, world.tls.host, "app:1.0")


# Basic auth -----------------------------------------------------------------------------


def _docker_config(path: Path, host: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {f"https://{host}": {"auth": auth}}}))
    return path


def test_basic_auth_from_docker_config(world: World, tmp_path: Path) -> None:
    cfg = _docker_config(tmp_path / "config.json", world.basic.host, USER, PASSWORD)
    config = RegistryConfig.build(ca_file=str(world.pki.ca_cert), docker_config=cfg)
    with Resolver(config) as resolver:
        image = resolver.resolve(f"{world.basic.host}/private/app:1.0")
    assert image == expected_image(world, world.basic.host, "private/app:1.0")


def test_basic_auth_from_a_pull_secret(world: World) -> None:
    dockerconfig = {"auths": {world.basic.host: {"username": USER, "password": PASSWORD}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
              "metadata": {"name": "regcred", "namespace": "default"},
              "data": {".dockerconfigjson":
                       base64.b64encode(json.dumps(dockerconfig).encode()).decode()}}
    config = RegistryConfig.build(ca_file=str(world.pki.ca_cert), docker_config=False,
                                  pull_secrets=[(secret, "secret.yaml")])
    with Resolver(config) as resolver:
        assert resolver.resolve(f"{world.basic.host}/app:1.1").layers


def test_basic_auth_wrong_password(world: World, tmp_path: Path) -> None:
    cfg = _docker_config(tmp_path / "config.json", world.basic.host, USER, "wrong")
    config = RegistryConfig.build(ca_file=str(world.pki.ca_cert), docker_config=cfg)
    with Resolver(config) as resolver, pytest.raises(UnauthorizedError) as caught:
        resolver.resolve(f"{world.basic.host}/app:1.0")
    assert "credentials were refused" in str(caught.value)
    assert world.basic.host in str(caught.value)


def test_basic_auth_without_credentials(world: World) -> None:
    config = RegistryConfig.build(ca_file=str(world.pki.ca_cert), docker_config=False)
    with Resolver(config) as resolver, pytest.raises(UnauthorizedError) as caught:
        resolver.resolve(f"{world.basic.host}/app:1.0")
    assert "none were found" in str(caught.value)


# Bearer tokens --------------------------------------------------------------------------


def _token_config(world: World, credentials: Credentials | None) -> RegistryConfig:
    config = RegistryConfig.build(docker_config=False)
    return config.with_registry(world.token.host,
                                RegistryOptions(plain_http=True, credentials=credentials))


def test_bearer_token_with_username_and_password(world: World) -> None:
    config = _token_config(world, Credentials(USER, PASSWORD))
    with Resolver(config) as resolver:
        report = resolver.resolve_many(
            [f"{world.token.host}/private/app:1.0", f"{world.token.host}/multi:1.0"]
        )
    assert report.ok, report.failures
    assert report.images[0] == expected_image(world, world.token.host, "private/app:1.0")
    scopes = {r["params"]["scope"] for r in world.token_server.requests[-2:]}
    assert scopes == {"repository:private/app:pull", "repository:multi:pull"}
    assert all(r["params"]["service"] == "fastmatch-test-registry"
               for r in world.token_server.requests[-2:])


def test_bearer_token_is_reused_for_the_same_repository(world: World) -> None:
    config = _token_config(world, Credentials(USER, PASSWORD))
    before = len(world.token_server.requests)
    with Resolver(config) as resolver:
        resolver.resolve(f"{world.token.host}/app:1.0")
        resolver.resolve(f"{world.token.host}/app:1.1")
    assert len(world.token_server.requests) - before == 1


def test_bearer_token_from_an_identity_token(world: World) -> None:
    config = _token_config(world, Credentials(identity_token=REFRESH_TOKEN))
    with Resolver(config) as resolver:
        assert resolver.resolve(f"{world.token.host}/private/app:1.0").layers
    assert world.token_server.requests[-1]["method"] == "POST"


def test_bearer_token_anonymous_for_a_public_repository(world: World) -> None:
    with Resolver(_token_config(world, None)) as resolver:
        image = resolver.resolve(f"{world.token.host}/public/app:1.1")
    assert image == expected_image(world, world.token.host, "public/app:1.1")


def test_bearer_token_anonymous_for_a_private_repository(world: World) -> None:
    with Resolver(_token_config(world, None)) as resolver, \
            pytest.raises(UnauthorizedError) as caught:
        resolver.resolve(f"{world.token.host}/private/app:1.0")
    assert "no credentials were found" in str(caught.value)


def test_bearer_token_server_refuses_bad_credentials(world: World) -> None:
    with Resolver(_token_config(world, Credentials(USER, "nope"))) as resolver, \
            pytest.raises(UnauthorizedError) as caught:
        resolver.resolve(f"{world.token.host}/private/app:1.0")
    assert "token server" in str(caught.value) and "refused the credentials" in str(caught.value)


# Many references ------------------------------------------------------------------------


def test_resolve_many_goes_on_past_failures(world: World) -> None:
    host = world.plain.host
    refs = [f"{host}/app:1.0", f"{host}/nothing:1", "Bad/Reference", f"{host}/multi:1.0",
            f"{host}/app:1.0", f"{host}/app:404"]
    with plain(world, max_concurrency=4) as resolver:
        report = resolver.resolve_many(refs)
    assert [r.image.ref for r in report.resolved] == [f"{host}/app:1.0", f"{host}/multi:1.0"]
    assert sorted(f.kind for f in report.failures) == \
        ["invalid-reference", "not-found", "not-found"]
    assert not report.ok
    failed = {f.reference for f in report.failures}
    assert failed == {f"{host}/nothing:1", "Bad/Reference", f"{host}/app:404"}


def test_resolve_layers(world: World) -> None:
    with plain(world) as resolver:
        layers = resolver.resolve_layers(f"{world.plain.host}/app:1.1")
    assert layers == expected_image(world, world.plain.host, "app:1.1").layers


def test_shared_base_layer_is_the_same_layer(world: World) -> None:
    with plain(world) as resolver:
        a = resolver.resolve(f"{world.plain.host}/app:1.0")
        b = resolver.resolve(f"{world.plain.host}/app:1.1")
    assert a.layers[0] == b.layers[0] and a.layers[1] != b.layers[1]
