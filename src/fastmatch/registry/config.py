"""Per-registry options: transport (plain HTTP, insecure TLS, CA bundle) and credentials.

ECI lets a pod or an ImageCache mark registries as plain-HTTP
(``k8s.aliyun.com/plain-http-registry``) or as serving a certificate that is
not to be verified (``k8s.aliyun.com/insecure-registry``); fastmatch offers
the same switches per registry host, plus a CA bundle for private PKIs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastmatch.errors import InputFileError
from fastmatch.registry.auth import (
    DOCKER_HUB,
    DOCKER_HUB_API_HOST,
    Credentials,
    CredentialStore,
    default_docker_config_path,
    normalize_registry_key,
)

__all__ = ["RegistryConfig", "RegistryOptions"]


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to talk to one registry.

    ``plain_http``: speak HTTP, not HTTPS.  ``insecure``: HTTPS without
    verifying the certificate.  ``ca_file``: a PEM bundle to verify the
    registry's certificate with (instead of the system's).  ``credentials``:
    what to present, overriding Docker config and pull secrets.
    ``endpoint``: the host to connect to, when not the registry host itself
    (a mirror; Docker Hub's is ``registry-1.docker.io``).
    """

    plain_http: bool = False
    insecure: bool = False
    ca_file: str | None = None
    credentials: Credentials | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.ca_file is not None:
            _check_ca_bundle(self.ca_file)


@dataclass(frozen=True)
class RegistryConfig:
    """Options by registry host, a default for the others, and a credential store.

    >>> cfg = RegistryConfig.build(plain_http=["localhost:5000"])
    >>> cfg.options_for("localhost:5000").plain_http
    True
    """

    registries: Mapping[str, RegistryOptions] = field(default_factory=dict)
    default: RegistryOptions = field(default_factory=RegistryOptions)
    credentials: CredentialStore = field(default_factory=CredentialStore)

    @classmethod
    def build(
        cls,
        *,
        plain_http: Iterable[str] = (),
        insecure: Iterable[str] = (),
        ca_file: str | None = None,
        ca_files: Mapping[str, str] | None = None,
        docker_config: str | os.PathLike[str] | bool | None = None,
        pull_secrets: Iterable[tuple[Mapping[str, Any], str]] = (),
    ) -> RegistryConfig:
        """Assemble a config from the usual switches.

        ``docker_config``: a path, ``None`` for the default location when it
        exists, ``False`` for none.  ``pull_secrets``: ``(secret, where)`` pairs;
        they take precedence over the Docker config.
        """
        store = CredentialStore()
        for secret, where in pull_secrets:
            store.add_pull_secret(secret, where)
        if docker_config is None:
            path = default_docker_config_path()
            if path.is_file():
                store.add_docker_config(path)
        elif docker_config is not False and docker_config is not True:
            store.add_docker_config(docker_config)
        registries: dict[str, RegistryOptions] = {}

        def update(host: str, **changes: Any) -> None:
            key = _host_key(host)
            registries[key] = replace(registries.get(key, RegistryOptions()), **changes)

        for host in plain_http:
            update(host, plain_http=True)
        for host in insecure:
            update(host, insecure=True)
        for host, bundle in (ca_files or {}).items():
            update(host, ca_file=str(bundle))
        default = RegistryOptions(ca_file=ca_file)
        if ca_file is not None:
            registries = {
                k: v if v.ca_file else replace(v, ca_file=ca_file) for k, v in registries.items()
            }
        return cls(registries, default, store)

    def with_registry(self, host: str, options: RegistryOptions) -> RegistryConfig:
        """A copy with ``options`` for ``host``."""
        registries = dict(self.registries)
        registries[_host_key(host)] = options
        return replace(self, registries=registries)

    def options_for(self, host: str) -> RegistryOptions:
        """The options for registry ``host`` (the default when none were given)."""
        return self.registries.get(_host_key(host), self.default)

    def endpoint_for(self, host: str) -> str:
        """The host to connect to for registry ``host``."""
        options = self.options_for(host)
        if options.endpoint:
            return options.endpoint
        return DOCKER_HUB_API_HOST if _host_key(host) == DOCKER_HUB else host

    def credentials_for(self, host: str, path: str) -> Credentials | None:
        """The credentials for repository ``path`` on ``host``, explicit options first."""
        options = self.options_for(host)
        if options.credentials is not None:
            return options.credentials
        return self.credentials.lookup(host, path)


def _check_ca_bundle(path: str) -> None:
    """Refuse a CA bundle that TLS could not use, now rather than at the first request."""
    if not Path(path).exists():
        raise InputFileError(f"{path}: CA bundle not found")
    if not Path(path).is_file():
        raise InputFileError(f"{path}: a CA bundle must be a PEM file, not a directory")
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise InputFileError(
            f"{path}: not a PEM CA bundle ({exc.reason or exc}): expected "
            "-----BEGIN CERTIFICATE----- blocks"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read CA bundle: {exc}") from None


def _host_key(host: str) -> str:
    return normalize_registry_key(host).partition("/")[0]
