"""Manifests: Docker schema 2 and OCI images, manifest lists and OCI indexes.

Parsing is strict where a wrong answer would follow (layer digests and sizes,
child digests) and lenient elsewhere (unknown fields, annotations), as
registries and builders add fields freely.  Platform choice follows
containerd: the OS and architecture must agree; a variant asked for must
agree too, with ``arm64`` meaning ``arm64/v8`` and ``arm`` meaning ``arm/v7``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastmatch.digest import is_digest
from fastmatch.errors import FastmatchError
from fastmatch.model import Layer

__all__ = [
    "ACCEPT",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "ImageManifest",
    "ManifestIndex",
    "ManifestProblem",
    "Platform",
    "PlatformEntry",
    "compute_digest",
    "parse_manifest",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
# Indexes first: a registry that holds one for a tag must not down-convert it.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
    "armel": "arm",
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


class ManifestProblem(FastmatchError, ValueError):
    """A manifest is malformed or unsupported; the resolver adds reference and registry."""


def compute_digest(body: bytes, algorithm: str = "sha256") -> str:
    """The OCI digest of ``body`` (``sha256`` unless ``algorithm`` says otherwise)."""
    if algorithm not in ("sha256", "sha512"):
        raise ManifestProblem(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Platform:
    """An OS / architecture / variant triple, e.g. ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Read ``os/arch[/variant]`` (``linux/amd64``, ``linux/arm/v7``, ``windows/amd64``)."""
        parts = [p.strip().lower() for p in str(text).split("/")]
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestProblem(
                f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None).normalized()

    def normalized(self) -> Platform:
        """Architecture aliases folded (``x86_64`` is ``amd64``), the default variant made
        explicit (``arm64`` is ``arm64/v8``)."""
        arch = _ARCH_ALIASES.get(self.architecture.lower(), self.architecture.lower())
        variant = self.variant.lower() if self.variant else None
        if self.architecture.lower() == "armel" and variant is None:
            variant = "v6"
        if arch == "arm64" and variant == "8":
            variant = "v8"
        if variant is None:
            variant = _DEFAULT_VARIANT.get(arch)
        return Platform(self.os.lower(), arch, variant)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True, slots=True)
class PlatformEntry:
    """One manifest of an index: its digest, media type, size and platform (if given)."""

    digest: str
    media_type: str
    size: int
    platform: Platform | None


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """An image manifest: its layers in order and its config descriptor's digest."""

    media_type: str
    config_digest: str
    layers: tuple[Layer, ...]


@dataclass(frozen=True, slots=True)
class ManifestIndex:
    """A manifest list or OCI index: one manifest per platform."""

    media_type: str
    manifests: tuple[PlatformEntry, ...]

    @property
    def platforms(self) -> list[str]:
        """The platforms the index offers, as ``os/arch[/variant]`` strings."""
        return [str(m.platform) for m in self.manifests if m.platform is not None]

    def choose(self, wanted: Platform) -> PlatformEntry | None:
        """The manifest for ``wanted``, or ``None``.

        An exact variant beats an entry that names none (``amd64`` for
        ``amd64/v3``); the first entry wins among equals, as in containerd.
        """
        wanted = wanted.normalized()
        best: tuple[int, PlatformEntry] | None = None
        for entry in self.manifests:
            if entry.platform is None or entry.media_type not in MANIFEST_TYPES | INDEX_TYPES:
                continue
            have = entry.platform.normalized()
            if have.os != wanted.os or have.architecture != wanted.architecture:
                continue
            if have.variant == wanted.variant:
                score = 2
            elif have.variant is None or wanted.variant is None:
                score = 1
            else:
                continue
            if best is None or score > best[0]:
                best = (score, entry)
        return best[1] if best is not None else None


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestProblem(f"{where}: '{key}' is missing or not a {kind.__name__}")
    return value


def _descriptor(obj: object, where: str) -> tuple[str, int, str]:
    if not isinstance(obj, Mapping):
        raise ManifestProblem(f"{where}: a descriptor must be an object")
    digest = _require(obj, "digest", str, where)
    if not is_digest(digest):
        raise ManifestProblem(f"{where}: invalid digest {digest!r}")
    size = _require(obj, "size", int, where)
    if size < 0:
        raise ManifestProblem(f"{where}: negative size {size}")
    media_type = obj.get("mediaType", "")
    if not isinstance(media_type, str):
        raise ManifestProblem(f"{where}: 'mediaType' must be a string")
    return digest, size, media_type


def _media_type(content_type: str | None, doc: Mapping[str, Any]) -> str:
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip().lower()
    known = MANIFEST_TYPES | INDEX_TYPES
    if isinstance(declared, str) and declared in known:
        return declared
    if header in known:
        return header
    if doc.get("schemaVersion") == 1 or header in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise ManifestProblem(
            "unsupported manifest: Docker schema 1 (deprecated; push the image again "
            "with a current client)"
        )
    # OCI allows mediaType to be absent: tell an index from a manifest by shape.
    if doc.get("schemaVersion") == 2 and declared is None:
        if isinstance(doc.get("manifests"), list):
            return OCI_INDEX
        if isinstance(doc.get("layers"), list) and isinstance(doc.get("config"), Mapping):
            return OCI_MANIFEST
    shown = declared if isinstance(declared, str) else header or "none"
    raise ManifestProblem(f"unsupported manifest media type {shown!r}")


def parse_manifest(body: bytes, content_type: str | None = None) -> ImageManifest | ManifestIndex:
    """Parse a manifest or an index from its bytes and ``Content-Type``.

    Raise :class:`ManifestProblem` if it is not JSON, not of a supported
    type, or lacks what resolution needs.
    """
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ManifestProblem(f"malformed manifest: not JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ManifestProblem("malformed manifest: not UTF-8 JSON") from None
    except RecursionError:
        raise ManifestProblem("malformed manifest: JSON nested too deeply") from None
    except ValueError:  # an integer of thousands of digits
        raise ManifestProblem("malformed manifest: a number too long to read") from None
    if not isinstance(doc, Mapping):
        raise ManifestProblem("malformed manifest: not a JSON object")
    media_type = _media_type(content_type, doc)
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestProblem("malformed index: 'manifests' is missing or not a list")
        return ManifestIndex(media_type, tuple(_entry(e, i) for i, e in enumerate(entries)))
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, Mapping):
        raise ManifestProblem("malformed manifest: 'config' is missing or not an object")
    if not isinstance(layers, list):
        raise ManifestProblem("malformed manifest: 'layers' is missing or not a list")
    config_digest, _, _ = _descriptor(config, "malformed manifest: config")
    built: list[Layer] = []
    for i, layer in enumerate(layers):
        digest, size, _ = _descriptor(layer, f"malformed manifest: layers[{i}]")
        built.append(Layer(digest, size))
    return ImageManifest(media_type, config_digest, tuple(built))


def _entry(obj: object, i: int) -> PlatformEntry:
    where = f"malformed index: manifests[{i}]"
    digest, size, media_type = _descriptor(obj, where)
    assert isinstance(obj, Mapping)
    raw = obj.get("platform")
    platform = None
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ManifestProblem(f"{where}: 'platform' must be an object")
        os_name = raw.get("os")
        arch = raw.get("architecture")
        variant = raw.get("variant")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            raise ManifestProblem(f"{where}: platform needs 'os' and 'architecture' strings")
        if variant is not None and not isinstance(variant, str):
            raise ManifestProblem(f"{where}: platform 'variant' must be a string")
        platform = Platform(os_name, arch, variant or None)
    return PlatformEntry(digest, media_type, size, platform)


def available(platforms: Sequence[str]) -> str:
    """A short list of platforms for an error message."""
    return ", ".join(platforms) if platforms else "none"
