"""Errors of the registry resolver.

Every error names the reference and the registry it was resolved against, so a
report over many references says which one failed where and why.  They all
derive from :class:`RegistryError` (also ``fastmatch.RegistryError``), itself a
:class:`fastmatch.errors.FastmatchError`.
"""

from __future__ import annotations

from fastmatch.errors import FastmatchError

__all__ = [
    "ManifestError",
    "PlatformNotFoundError",
    "ReferenceNotFoundError",
    "RegistryError",
    "RegistryUnavailableError",
    "RegistryUnreachableError",
    "ResolveError",
    "UnauthorizedError",
]


class RegistryError(FastmatchError):
    """A registry could not resolve a reference (unknown, unauthorized, unreachable)."""


class ResolveError(RegistryError):
    """A reference could not be resolved; names the reference and the registry.

    ``reference`` is the reference as normalized, ``registry`` the registry
    host (``docker.io``, ``127.0.0.1:5000``), ``detail`` the reason alone.
    """

    kind = "error"
    registry_code: str | None = None  # the Distribution error code, when the registry gave one

    def __init__(self, reference: str, registry: str, detail: str) -> None:
        self.reference = reference
        self.registry = registry
        self.detail = detail
        super().__init__(f"{reference}: {detail} (registry {registry})")


class ReferenceNotFoundError(ResolveError):
    """The registry does not know the repository, the tag or the digest."""

    kind = "not-found"


class UnauthorizedError(ResolveError):
    """The registry refused the credentials, or asked for some and none were given."""

    kind = "unauthorized"


class RegistryUnreachableError(ResolveError):
    """The registry could not be reached: DNS, connection, TLS or timeout."""

    kind = "unreachable"


class RegistryUnavailableError(ResolveError):
    """The registry answered, but with server errors or rate limits past every retry."""

    kind = "unavailable"


class ManifestError(ResolveError):
    """The manifest is malformed, does not match its digest, or is of an unsupported type."""

    kind = "bad-manifest"


class PlatformNotFoundError(ManifestError):
    """A multi-platform image has no manifest for the platform asked for."""

    kind = "no-platform"
