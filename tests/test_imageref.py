"""Image references are read the way Docker reads them (SPEC §5).

The cases follow those of Docker's ``distribution/reference`` tests
(normalize_test.go, reference_test.go), restated for fastmatch's API and its
one design difference: a reference with a digest is identified by the digest
alone, so the normalized form drops the tag.
"""

from __future__ import annotations

import pytest

from fastmatch.errors import FastmatchError, InvalidReferenceError
from fastmatch.imageref import ImageReference, normalize_reference, parse_reference

SHA256 = "sha256:" + "f" * 64
OTHER_SHA256 = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
SHA384 = "sha384:" + "a" * 96
SHA512 = "sha512:" + "f" * 128
HEX64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"


# --- normalization: familiar names become fully qualified ----------------------------------


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        # Docker Hub: official images get library/, everything gets :latest.
        ("nginx", "docker.io/library/nginx:latest"),
        ("redis:latest", "docker.io/library/redis:latest"),
        ("library/debian", "docker.io/library/debian:latest"),
        ("docker.io/debian", "docker.io/library/debian:latest"),
        ("docker.io/library/debian:12", "docker.io/library/debian:12"),
        ("docker/docker", "docker.io/docker/docker:latest"),
        ("dmcgowan/myapp:1.0", "docker.io/dmcgowan/myapp:1.0"),
        ("library/foo/bar", "docker.io/library/foo/bar:latest"),
        ("store/foo/bar", "docker.io/store/foo/bar:latest"),
        ("other/library", "docker.io/other/library:latest"),
        ("library/ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest"),
        # The legacy Docker Hub host is docker.io.
        ("index.docker.io/debian", "docker.io/library/debian:latest"),
        ("index.docker.io/docker/docker", "docker.io/docker/docker:latest"),
        ("index.docker.io/library/ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest"),
        # A first component with '.' or ':' or 'localhost' is a registry host.
        ("example.com/privatebase", "example.com/privatebase:latest"),
        ("example.com:8000/private/moonbase", "example.com:8000/private/moonbase:latest"),
        ("127.0.0.1:5000/library/debian", "127.0.0.1:5000/library/debian:latest"),
        ("192.168.0.1:8/debian", "192.168.0.1:8/debian:latest"),
        ("sub-dom1.foo.com/bar/baz/quux:some-tag", "sub-dom1.foo.com/bar/baz/quux:some-tag"),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io/test.example.com/my-app:test.example.com",
        ),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest"),
        ("test-com:8080/foo", "test-com:8080/foo:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        # A component without '.' or ':' is a Docker Hub namespace, even with '_'.
        ("test_com/foo", "docker.io/test_com/foo:latest"),
        ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080"),
        ("localhostx/app", "docker.io/localhostx/app:latest"),
        # One component is always a Docker Hub name; what follows ':' is a tag, not a port.
        ("localhost", "docker.io/library/localhost:latest"),
        ("test.com:5000", "docker.io/library/test.com:5000"),
        ("192.168.1.1", "docker.io/library/192.168.1.1:latest"),
        ("192.168.1.1:5000", "docker.io/library/192.168.1.1:5000"),
        ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"),
        # IPv6 registry hosts, in brackets, with or without a port.
        ("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest"),
        ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag"),
        ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag"),
        ("[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo:latest"),
        ("[::1]:5000/repo", "[::1]:5000/repo:latest"),
        ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker:latest"),
        # Tags keep their case; separators in paths: '.', '_', '__', and runs of '-'.
        ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase"),
        ("docker---rules/docker", "docker.io/docker---rules/docker:latest"),
        ("dock__er/docker", "docker.io/dock__er/docker:latest"),
        ("d/docker", "docker.io/d/docker:latest"),
        ("jess/t", "docker.io/jess/t:latest"),
        # 64 characters are fine when they are not all hex, or when a host precedes them.
        (
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
        ),
        (f"docker.io/{HEX64}", f"docker.io/library/{HEX64}:latest"),
        (HEX64[:-1], f"docker.io/library/{HEX64[:-1]}:latest"),
        (f"{HEX64}:v1", f"docker.io/library/{HEX64}:v1"),
    ],
)
def test_normalizes_like_docker(ref: str, normalized: str) -> None:
    assert normalize_reference(ref) == normalized


@pytest.mark.parametrize(
    ("ref", "domain", "path"),
    [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase"),
        # Upper case is never in a repository path, so an upper-case first component
        # is taken as a host, as Docker does.
        ("Foo/bar", "Foo", "bar"),
        ("DOCKER/docker", "DOCKER", "docker"),
        ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo"),
    ],
)
def test_splits_registry_host_from_repository_path(ref: str, domain: str, path: str) -> None:
    parsed = parse_reference(ref)
    assert (parsed.domain, parsed.path) == (domain, path)
    assert parsed.name == f"{domain}/{path}"


def test_all_spellings_of_an_image_normalize_to_one_identity() -> None:
    spellings = [
        "ubuntu",
        "ubuntu:latest",
        "library/ubuntu",
        "docker.io/ubuntu",
        "docker.io/library/ubuntu:latest",
        "index.docker.io/library/ubuntu",
        "index.docker.io/ubuntu:latest",
    ]
    assert {normalize_reference(s) for s in spellings} == {"docker.io/library/ubuntu:latest"}


# --- digests: a pinned reference is identified by its digest ---------------------------------


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        (f"redis@{OTHER_SHA256}", f"docker.io/library/redis@{OTHER_SHA256}"),
        (f"dmcgowan/myapp@{OTHER_SHA256}", f"docker.io/dmcgowan/myapp@{OTHER_SHA256}"),
        (f"busybox:latest@{SHA256}", f"docker.io/library/busybox@{SHA256}"),
        (f"nginx:1.25@{SHA256}", f"docker.io/library/nginx@{SHA256}"),
        (f"test:5000/repo:tag@{SHA256}", f"test:5000/repo@{SHA256}"),
        (f"[2001:db8::1]:5000/repo:tag@{SHA256}", f"[2001:db8::1]:5000/repo@{SHA256}"),
        (f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}", f"xn--7o8h.com/myimage@{SHA512}"),
        (f"quay.io/org/app@{SHA384}", f"quay.io/org/app@{SHA384}"),
    ],
)
def test_a_digest_identifies_the_image_and_the_tag_is_dropped(ref: str, normalized: str) -> None:
    assert normalize_reference(ref) == normalized


def test_tag_and_digest_are_both_kept_on_the_parsed_reference() -> None:
    parsed = parse_reference(f"test:5000/repo:tag@{SHA256}")
    assert parsed == ImageReference(domain="test:5000", path="repo", tag="tag", digest=SHA256)


def test_the_same_digest_under_different_tags_is_the_same_image() -> None:
    assert normalize_reference(f"nginx:1.25@{SHA256}") == normalize_reference(
        f"docker.io/library/nginx:stable@{SHA256}"
    )


def test_without_tag_or_digest_the_tag_is_latest_and_with_a_digest_there_is_none() -> None:
    assert parse_reference("nginx").tag == "latest"
    assert parse_reference(f"nginx@{SHA256}").tag is None
    assert parse_reference(f"nginx@{SHA256}").digest == SHA256


# --- familiar form --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "familiar"),
    [
        ("docker.io/library/ubuntu", "ubuntu:latest"),
        ("docker.io/fooo/bar:1", "fooo/bar:1"),
        ("index.docker.io/library/foo", "foo:latest"),
        ("docker.io/library/foo/bar", "library/foo/bar:latest"),
        ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest"),
        ("example.com:8000/privatebasee", "example.com:8000/privatebasee:latest"),
        (f"busybox:latest@{SHA256}", f"busybox@{SHA256}"),
    ],
)
def test_familiar_form_drops_docker_hub_and_library(ref: str, familiar: str) -> None:
    assert parse_reference(ref).familiar == familiar


def test_str_of_a_parsed_reference_is_its_normalized_form() -> None:
    assert str(parse_reference("user/app:1")) == "docker.io/user/app:1"


# --- lengths --------------------------------------------------------------------------------


def test_a_repository_path_of_255_characters_is_accepted() -> None:
    # Docker limits the path (not the host) to 255 characters.
    assert parse_reference("example.com/" + "a" * 255 + ":tag").path == "a" * 255
    longest_hub = "a/" * 127 + "a"  # 255 characters on Docker Hub
    assert parse_reference(longest_hub + ":tag-puts-this-over-max").path == longest_hub


@pytest.mark.parametrize(
    "ref",
    [
        "domain.com/" + "a" * 256 + ":tag",
        "a/" * 128 + "a:tag",
        # A single Docker Hub name grows by "library/" when normalized: 250 + 8 > 255.
        "a" * 250,
    ],
)
def test_a_repository_path_over_255_characters_is_refused(ref: str) -> None:
    with pytest.raises(InvalidReferenceError, match="more than 255"):
        parse_reference(ref)


def test_a_tag_of_128_characters_is_accepted_and_129_refused() -> None:
    assert parse_reference("nginx:" + "t" * 128).tag == "t" * 128
    with pytest.raises(InvalidReferenceError, match="tag is 129 characters long, more than 128"):
        parse_reference("nginx:" + "t" * 129)


# --- invalid references: a clear error that quotes the reference and says what is wrong ------


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("", "empty"),
        (" nginx", "white space"),
        ("nginx\n", "white space"),
        # Upper case in the repository path.
        ("docker/Docker", "must be lowercase"),
        ("docker.io/docker/Docker", "must be lowercase"),
        ("Uppercase:tag", "must be lowercase"),
        ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
        ("NGINX", "must be lowercase"),
        # Empty parts.
        (":justtag", "repository name is empty"),
        (f"@{SHA256}", "repository name is empty"),
        ("nginx:", "tag after ':' is empty"),
        ("docker///docker", "path component is empty"),
        ("docker.io/docker///docker", "path component is empty"),
        ("docker/", "path component is empty"),
        ("/nginx", "path component is empty"),
        # Bad path components.
        ("-docker", "invalid path component '-docker'"),
        ("-docker/docker", "invalid path component '-docker'"),
        ("docker-/docker", "invalid path component 'docker-'"),
        ("-docker-/docker", "invalid path component '-docker-'"),
        ("____/____", "invalid path component '____'"),
        ("_docker/_docker", "invalid path component '_docker'"),
        # '.' makes the first component a host, as in Docker.
        ("dock_.er/docker", "invalid registry host 'dock_.er'"),
        ("dock-.er/docker", "invalid registry host 'dock-.er'"),
        ("docker/dock..er", "invalid path component 'dock..er'"),
        ("aa/asdf$$^/aa", "invalid path component 'asdf$$^'"),
        # Bad hosts.
        ("-docker.io/docker/docker", "invalid registry host '-docker.io'"),
        ("dock..er/docker", "invalid registry host 'dock..er'"),
        ("https://github.com/docker/docker", "URL"),
        # IPv6: brackets are required, zones and embedded IPv4 are not allowed, and a
        # host alone is not a repository.
        ("fc00::1:5000/debian", "invalid registry host 'fc00::1:5000'"),
        ("[fe80::1%eth0]:5000/debian", "invalid registry host"),
        ("[fe80::1%@invalidzone]:5000/repo", "invalid digest"),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid registry host"),
        ("[fc00::1]", "registry host with no repository"),
        ("[2001:db8::1]:5000", "registry host with no repository"),
        ("[2001:db8::1]:tag", "registry host with no repository"),
        # Bad tags.
        ("nginx:-foo", "invalid tag '-foo'"),
        ("nginx:.foo", "invalid tag '.foo'"),
        ("nginx:a+b", "invalid tag 'a+b'"),
        # A bare image id is not a repository name.
        (HEX64, "64-byte hexadecimal"),
    ],
)
def test_invalid_references_say_what_is_wrong(ref: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_reference(ref)
    assert why in str(caught.value)
    assert str(caught.value).startswith(f"invalid image reference {ref!r}: ")


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("repo@sha256:" + "f" * 34, "sha256 takes 64 hex digits, not 34"),
        ("repo@sha256:" + "f" * 65, "sha256 takes 64 hex digits, not 65"),
        ("repo@sha512:" + "f" * 64, "sha512 takes 128 hex digits, not 64"),
        ("repo@sha256:" + "F" * 64, "lowercase"),
        ("repo@sha384:" + "A" * 96, "lowercase"),
        ("validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm 'invaliddigest'"),
        ("repo@md5:" + "f" * 32, "unsupported digest algorithm 'md5'"),
        ("repo@sha256:abc", "invalid digest 'sha256:abc'"),
        ("repo@sha256", "invalid digest 'sha256'"),
        ("repo@", "invalid digest ''"),
        ("repo@sha256:" + "g" * 64, "invalid digest"),
    ],
)
def test_bad_digests_are_refused_with_the_digest_named(ref: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_reference(ref)
    assert why in str(caught.value)


@pytest.mark.parametrize("value", [None, 42, b"nginx", ["nginx"]])
def test_a_reference_that_is_not_a_string_is_bad_input(value: object) -> None:
    with pytest.raises(InvalidReferenceError, match="must be a string"):
        parse_reference(value)  # type: ignore[arg-type]


def test_reference_errors_are_fastmatch_errors_and_value_errors() -> None:
    with pytest.raises(FastmatchError):
        normalize_reference("Bad/Ref/Name")
    with pytest.raises(ValueError):
        normalize_reference("docker/Docker")
