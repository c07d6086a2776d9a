"""Credentials and challenges, without a registry: config.json, pull secrets, helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from fastmatch.errors import InputFileError
from fastmatch.registry import Credentials, CredentialStore, RegistryConfig
from fastmatch.registry.auth import normalize_registry_key, parse_challenges


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_bearer_challenge() -> None:
    [challenge] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.docker.io/token",
                                "service": "registry.docker.io",
                                "scope": "repository:library/nginx:pull"}


def test_several_challenges_and_quoting() -> None:
    challenges = parse_challenges('Basic realm="a \\"b\\"", Bearer realm=x,error=invalid_token')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].params["realm"] == 'a "b"'
    assert challenges[1].params == {"realm": "x", "error": "invalid_token"}


@pytest.mark.parametrize(
    ("key", "normalized"),
    [("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
     ("http://Reg.Example:5000", "reg.example:5000"), ("reg.io/team/", "reg.io/team")],
)
def test_registry_keys(key: str, normalized: str) -> None:
    assert normalize_registry_key(key) == normalized


def test_docker_config_auths(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
        "reg.io": {"username": "u", "password": "p"},
        "reg.io/team": {"auth": b64("team:secret")},
        "*.azurecr.io": {"auth": b64("az:pw")},
        "tok.io": {"identitytoken": "refresh"},
    }}))
    store = CredentialStore()
    store.add_docker_config(path)
    assert store.lookup("docker.io", "library/nginx") == Credentials("hubuser", "hubpass")
    assert store.lookup("reg.io", "other/app") == Credentials("u", "p")
    assert store.lookup("reg.io", "team/app") == Credentials("team", "secret")
    assert store.lookup("myreg.azurecr.io", "x") == Credentials("az", "pw")
    assert store.lookup("a.b.azurecr.io", "x") is None  # one label per *, as kubelet
    assert store.lookup("tok.io", "x") == Credentials(identity_token="refresh")
    assert store.lookup("unknown.io", "x") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [("{", "not valid JSON"), ("[]", "expected a JSON object"),
     ('{"auths": {"r.io": {"auth": "%%%"}}}', "auths['r.io']"),
     ('{"auths": {"r.io": {"auth": "' + b64("nocolon") + '"}}}', "user:password"),
     ('{"credHelpers": {"r.io": 5}}', "credHelpers")],
)
def test_bad_docker_config_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(InputFileError) as caught:
        CredentialStore().add_docker_config(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_pull_secrets_in_data_and_string_data_and_dockercfg() -> None:
    store = CredentialStore()
    store.add_pull_secret({"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "a"},
                           "data": {".dockerconfigjson": b64(json.dumps(
                               {"auths": {"a.io": {"auth": b64("ua:pa")}}}))}}, "s.yaml")
    store.add_pull_secret({"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "b"},
                           "stringData": {".dockerconfigjson": json.dumps(
                               {"auths": {"b.io": {"username": "ub", "password": "pb"}}})}},
                          "s.yaml")
    store.add_pull_secret({"type": "kubernetes.io/dockercfg", "metadata": {"name": "c"},
                           "data": {".dockercfg": b64(json.dumps(
                               {"https://c.io": {"auth": b64("uc:pc")}}))}}, "s.yaml")
    assert store.lookup("a.io") == Credentials("ua", "pa")
    assert store.lookup("b.io") == Credentials("ub", "pb")
    assert store.lookup("c.io") == Credentials("uc", "pc")


def test_bad_pull_secret_names_it() -> None:
    secret = {"type": "kubernetes.io/dockerconfigjson",
              "metadata": {"name": "regcred", "namespace": "shop"},
              "data": {".dockerconfigjson": "!!!"}}
    with pytest.raises(InputFileError, match=r"s.yaml: secret shop/regcred: .*not base64"):
        CredentialStore().add_pull_secret(secret, "s.yaml")


def test_pull_secrets_win_over_docker_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"r.io": {"auth": b64("cfg:cfg")}}}))
    secret = {"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "s"},
              "stringData": {".dockerconfigjson": json.dumps(
                  {"auths": {"r.io": {"auth": b64("secret:secret")}}})}}
    config = RegistryConfig.build(docker_config=path, pull_secrets=[(secret, "s.yaml")])
    assert config.credentials_for("r.io", "app") == Credentials("secret", "secret")


def test_default_docker_config_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.io": {"auth": b64("d:d")}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert RegistryConfig.build().credentials_for("r.io", "x") == Credentials("d", "d")
    assert RegistryConfig.build(docker_config=False).credentials_for("r.io", "x") is None


def test_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = "helper.io" ]; then\n'
        '  echo \'{"ServerURL":"helper.io","Username":"hu","Secret":"hs"}\'\n'
        'elif [ "$server" = "https://index.docker.io/v1/" ]; then\n'
        '  echo \'{"ServerURL":"x","Username":"<token>","Secret":"idtok"}\'\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "fake", "credHelpers": {"other.io": "absent"}}))
    store = CredentialStore()
    store.add_docker_config(path)
    assert store.lookup("helper.io") == Credentials("hu", "hs")
    assert store.lookup("docker.io") == Credentials(identity_token="idtok")
    assert store.lookup("nothing.io") is None
    assert store.lookup("other.io") is None  # helper not installed: anonymous, with a warning


def test_per_registry_options() -> None:
    config = RegistryConfig.build(plain_http=["a.io:5000"], insecure=["b.io"],
                                  docker_config=False)
    assert config.options_for("a.io:5000").plain_http
    assert not config.options_for("a.io").plain_http
    assert config.options_for("B.IO").insecure
    assert config.endpoint_for("docker.io") == "registry-1.docker.io"
    with pytest.raises(InputFileError, match="CA bundle not found"):
        RegistryConfig.build(ca_file="/nonexistent/ca.pem", docker_config=False)


@pytest.mark.parametrize(
    ("content", "message"),
    [("[" * 100_000, "not valid JSON: nested too deeply"),
     ('{"auths": 1' + "0" * 5000 + "}", "not valid JSON: Exceeds the limit"),
     (b"\xff\xfe{}", "not UTF-8 text")],
)
def test_a_docker_config_that_cannot_be_read_as_json_names_the_file(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = tmp_path / "config.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputFileError) as caught:
        CredentialStore().add_docker_config(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "message"),
    [({"stringData": {".dockerconfigjson": "[" * 100_000}}, "nested too deeply"),
     ({"data": {".dockerconfigjson": base64.b64encode(b"\xff\xfe").decode()}},
      "not UTF-8 text")],
)
def test_a_pull_secret_that_cannot_be_read_names_it(
    secret: dict[str, object], message: str
) -> None:
    doc = {"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "regcred"}, **secret}
    with pytest.raises(InputFileError) as caught:
        CredentialStore().add_pull_secret(doc, "s.yaml")
    assert str(caught.value).startswith("s.yaml: secret regcred: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(("content", "message"), [
    (b"not a certificate\n", "not a PEM CA bundle"), (b"", "not a PEM CA bundle"),
])
def test_a_ca_bundle_that_tls_cannot_use_is_refused_when_given(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    for options in ({"ca_file": str(bundle)}, {"ca_files": {"r.io": str(bundle)}}):
        with pytest.raises(InputFileError) as caught:
            RegistryConfig.build(docker_config=False, **options)  # type: ignore[arg-type]
        assert str(caught.value).startswith(f"{bundle}: ") and message in str(caught.value)
    with pytest.raises(InputFileError, match="not a directory"):
        RegistryConfig.build(docker_config=False, ca_file=str(tmp_path))
