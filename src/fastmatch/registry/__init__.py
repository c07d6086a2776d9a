"""Resolve image references to layers, from OCI registries or an image catalog.

>>> from fastmatch.registry import Resolver, RegistryConfig     # doctest: +SKIP
>>> config = RegistryConfig.build(plain_http=["registry.local:5000"])
>>> with Resolver(config, cache_dir="~/.cache/fastmatch/registry") as resolver:
...     image = resolver.resolve("registry.local:5000/app:1.0")
...     report = resolver.resolve_many(["nginx:1.25", "redis:7"])

Offline, from a catalog written by ``fastmatch resolve``:

>>> catalog = read_catalog("catalog.jsonl")                       # doctest: +SKIP
>>> images = catalog.images(["nginx:1.25", "redis:7"])
"""

from __future__ import annotations

from fastmatch.registry.auth import Credentials, CredentialStore
from fastmatch.registry.cache import DEFAULT_TAG_TTL, ManifestCache, default_cache_dir
from fastmatch.registry.catalog import Catalog, catalog_line, read_catalog, write_catalog
from fastmatch.registry.config import RegistryConfig, RegistryOptions
from fastmatch.registry.errors import (
    ManifestError,
    PlatformNotFoundError,
    ReferenceNotFoundError,
    RegistryError,
    RegistryUnavailableError,
    RegistryUnreachableError,
    ResolveError,
    UnauthorizedError,
)
from fastmatch.registry.manifest import Platform
from fastmatch.registry.resolver import (
    DEFAULT_PLATFORM,
    Resolution,
    ResolveFailure,
    Resolver,
    ResolveReport,
)
from fastmatch.registry.sources import FileReferences, read_references

__all__ = [
    "DEFAULT_PLATFORM",
    "DEFAULT_TAG_TTL",
    "Catalog",
    "CredentialStore",
    "Credentials",
    "FileReferences",
    "ManifestCache",
    "ManifestError",
    "Platform",
    "PlatformNotFoundError",
    "ReferenceNotFoundError",
    "RegistryConfig",
    "RegistryError",
    "RegistryOptions",
    "RegistryUnavailableError",
    "RegistryUnreachableError",
    "Resolution",
    "ResolveError",
    "ResolveFailure",
    "ResolveReport",
    "Resolver",
    "UnauthorizedError",
    "catalog_line",
    "default_cache_dir",
    "read_catalog",
    "read_references",
    "write_catalog",
]
