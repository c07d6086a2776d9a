"""The resolver: image references in, :class:`fastmatch.model.Image` objects out.

For a reference by tag the registry is asked what the tag points to, then
the manifest is read by digest; a manifest list or OCI index is narrowed to
one platform.  Every manifest is checked against its digest before it is
believed or cached.  Answers come, in order of preference, from a catalog
given by the caller, the cache (fresh tag entries, manifests by digest), the
registry, and, when the registry cannot be reached, a stale cache entry
served with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from fastmatch.errors import FastmatchError, ValidationError
from fastmatch.imageref import ImageReference, parse_reference
from fastmatch.inputs.catalog import DEFAULT_PLATFORM, Catalog
from fastmatch.model import Image, Layer
from fastmatch.platforms import normalize_platform
from fastmatch.registry.cache import DEFAULT_TAG_TTL, ManifestCache
from fastmatch.registry.client import RegistryClient, Response
from fastmatch.registry.config import RegistryConfig
from fastmatch.registry.errors import (
    ManifestError,
    PlatformNotFoundError,
    ReferenceNotFoundError,
    RegistryUnavailableError,
    RegistryUnreachableError,
)
from fastmatch.registry.manifest import (
    ImageManifest,
    ManifestIndex,
    ManifestProblem,
    Platform,
    available,
    compute_digest,
    parse_manifest,
)

__all__ = [
    "DEFAULT_PLATFORM",
    "Resolution",
    "ResolveFailure",
    "ResolveReport",
    "Resolver",
    "Source",
]

log = logging.getLogger("fastmatch.registry")

Source = Literal["registry", "cache", "stale-cache", "catalog"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """A resolved reference and how it was resolved.

    ``image.digest`` is what the reference points to (an index for a
    multi-platform image); ``manifest_digest`` is the image manifest the layers
    come from; ``platform`` is the platform chosen from an index, if any.
    """

    reference: str
    image: Image
    manifest_digest: str | None
    platform: str | None
    source: Source
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class ResolveFailure:
    """A reference that could not be resolved, and why."""

    reference: str
    error: FastmatchError

    @property
    def kind(self) -> str:
        """A short class of failure: ``not-found``, ``unauthorized``, ``unreachable``,
        ``unavailable``, ``bad-manifest``, ``no-platform``, ``invalid-reference``."""
        kind = getattr(self.error, "kind", None)
        return kind if isinstance(kind, str) else "invalid-reference"

    @property
    def message(self) -> str:
        """The error's message, which names the reference and the registry."""
        return str(self.error)


@dataclass(slots=True)
class ResolveReport:
    """What :meth:`Resolver.resolve_many` found: resolutions, failures and warnings,
    each in the order of the references given (duplicates resolved once)."""

    resolved: list[Resolution] = field(default_factory=list)
    failures: list[ResolveFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def images(self) -> list[Image]:
        """The resolved images."""
        return [r.image for r in self.resolved]

    @property
    def ok(self) -> bool:
        """Whether every reference was resolved."""
        return not self.failures


class _NeedsNetwork(Exception):
    """Raised in a local-only pass when the answer needs a registry."""


class Resolver:
    """Turn image references into images with layers, from registries or a catalog.

    ``config``: per-registry transport and credentials.  ``cache_dir``: a
    directory for the on-disk cache shared between runs (``None``: memory
    only).  ``tag_ttl``: seconds a tag's digest is trusted without asking.
    ``platform``: chosen from multi-platform images (``os/arch[/variant]``).
    ``max_concurrency``: references resolved, and requests in flight, at once.
    ``catalog``: images known beforehand, used without asking a registry.
    ``offline``: never contact a registry (catalog and cache only).
    ``serve_stale``: when a registry is unreachable, use an expired tag entry.

    >>> with Resolver(cache_dir="/tmp/cache") as r:            # doctest: +SKIP
    ...     image = r.resolve("nginx:1.25")
    ...     report = r.resolve_many(["nginx:1.25", "redis:7"])
    """

    def __init__(
        self,
        config: RegistryConfig | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        tag_ttl: float = DEFAULT_TAG_TTL,
        platform: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_retry_wait: float = 60.0,
        catalog: Catalog | None = None,
        offline: bool = False,
        serve_stale: bool = True,
    ) -> None:
        self.config = config if config is not None else RegistryConfig()
        self.platform = _platform(platform or DEFAULT_PLATFORM)
        # The platform asked for, if any: a catalog entry of no platform or (asked for none)
        # of the only one it has may answer; a registry is asked for linux/amd64 by default.
        self.platform_asked = None if platform is None else normalize_platform(platform)
        self.max_concurrency = max_concurrency
        self.cache = ManifestCache(cache_dir, tag_ttl)
        self.client = RegistryClient(
            self.config, timeout=timeout, retries=retries, max_concurrency=max_concurrency,
            backoff=backoff, max_retry_wait=max_retry_wait,
        )
        self.catalog = catalog
        self.offline = offline
        self.serve_stale = serve_stale

    def close(self) -> None:
        """Close the registry connections."""
        self.client.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Public ------------------------------------------------------------------------

    def resolve(self, ref: str, *, platform: str | None = None) -> Image:
        """The image ``ref`` names, with its layers; raise a :class:`ResolveError`
        (or ``InvalidReferenceError``) naming the reference and the registry."""
        return self.resolve_one(ref, platform=platform).image

    def get(self, ref: str, *, platform: str | None = None) -> Image | None:
        """The image ``ref`` names, with its layers, or ``None`` when its registry says it
        does not exist (a :class:`~fastmatch.inputs.LayerSource`); any other failure
        raises its :class:`ResolveError`."""
        try:
            return self.resolve(ref, platform=platform)
        except ReferenceNotFoundError:
            return None

    def resolve_layers(self, ref: str, *, platform: str | None = None) -> tuple[Layer, ...]:
        """The layers of the image ``ref`` names, base layer first."""
        return self.resolve(ref, platform=platform).layers

    def resolve_one(self, ref: str, *, platform: str | None = None) -> Resolution:
        """Like :meth:`resolve`, with how the answer was found."""
        parsed = parse_reference(ref)
        wanted = self.platform if platform is None else _platform(platform)
        asked = self.platform_asked if platform is None else normalize_platform(platform)
        return self._resolve(ref, parsed, wanted, asked=asked)

    def resolve_many(
        self, refs: Iterable[str], *, platform: str | None = None
    ) -> ResolveReport:
        """Resolve many references concurrently; go on past failures.

        Duplicates (after normalization) are resolved once.  The report lists
        resolutions and failures in the order the references came.
        """
        if isinstance(refs, str):  # one reference would be resolved letter by letter
            raise ValidationError("resolve_many takes several references (a list), "
                                  f"not one string: {refs!r}")
        wanted = self.platform if platform is None else _platform(platform)
        asked = self.platform_asked if platform is None else normalize_platform(platform)
        report = ResolveReport()
        order: list[str] = []
        parsed: dict[str, ImageReference] = {}
        for ref in refs:
            try:
                p = parse_reference(ref)
            except FastmatchError as exc:
                report.failures.append(ResolveFailure(ref, exc))
                continue
            if p.normalized not in parsed:
                parsed[p.normalized] = p
                order.append(ref)
        outcomes: dict[str, Resolution | ResolveFailure] = {}
        # Answer from the catalog and the cache in this thread first: threads only add
        # contention for work that never waits on the network.
        remote: list[str] = []
        for ref in order:
            p = parse_reference(ref)
            try:
                outcomes[p.normalized] = self._resolve(ref, p, wanted, asked=asked, local_only=True)
            except _NeedsNetwork:
                remote.append(ref)
            except FastmatchError as exc:
                outcomes[p.normalized] = ResolveFailure(ref, exc)

        def work(ref: str) -> None:
            p = parse_reference(ref)
            try:
                outcomes[p.normalized] = self._resolve(ref, p, wanted, asked=asked)
            except FastmatchError as exc:
                outcomes[p.normalized] = ResolveFailure(ref, exc)

        workers = max(1, min(self.max_concurrency, len(remote)))
        if workers == 1:
            for ref in remote:
                work(ref)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="fastmatch-resolve") as pool:
                for future in [pool.submit(work, ref) for ref in remote]:
                    future.result()  # a bug in a worker is raised, not hidden
        for ref in order:
            outcome = outcomes[parse_reference(ref).normalized]
            if isinstance(outcome, ResolveFailure):
                report.failures.append(outcome)
            else:
                report.resolved.append(outcome)
                if outcome.warning:
                    report.warnings.append(outcome.warning)
        return report

    # The steps ------------------------------------------------------------------------

    def _resolve(
        self, given: str, ref: ImageReference, platform: Platform, *,
        asked: str | None = None, local_only: bool = False,
    ) -> Resolution:
        if self.catalog is not None:
            known = self.catalog.entry(ref.normalized, platform=asked)
            if known is not None and known[1].layers:
                return Resolution(given, known[1], None, known[0], "catalog")
        try:
            return self._from_manifests(given, ref, platform, local_only)
        except ReferenceNotFoundError:
            others = self.catalog.platforms(ref.normalized) if self.catalog is not None else []
            if not (self.offline and others):
                raise
            has = ", ".join(sorted(p or "no platform" for p in others))
            raise PlatformNotFoundError(
                ref.normalized, ref.domain,
                f"the catalog has no entry for platform {asked or self.platform} (it has {has}), "
                "and resolving offline",
            ) from None

    def _from_manifests(
        self, given: str, ref: ImageReference, platform: Platform, local_only: bool
    ) -> Resolution:
        warning: str | None = None
        source: Source = "cache"
        if ref.digest is not None:
            top = ref.digest
        else:
            top, source, warning = self._tag_digest(ref, local_only)
        media_type, body, fetched = self._manifest(ref, top, local_only)
        if fetched:
            source = "registry"
        manifest = self._parse(ref, body, media_type)
        chosen: str | None = None
        manifest_digest = top
        if isinstance(manifest, ManifestIndex):
            entry = manifest.choose(platform)
            if entry is None:
                raise PlatformNotFoundError(
                    ref.normalized, ref.domain,
                    f"no manifest for platform {platform} (the image offers "
                    f"{available(manifest.platforms)}); choose one with --platform",
                )
            chosen = str(entry.platform)
            manifest_digest = entry.digest
            media_type, body, fetched = self._manifest(ref, entry.digest, local_only)
            if fetched:
                source = "registry" if source != "stale-cache" else source
            manifest = self._parse(ref, body, media_type)
            if isinstance(manifest, ManifestIndex):
                raise ManifestError(
                    ref.normalized, ref.domain,
                    f"unsupported manifest: the {chosen} entry {entry.digest} is itself an index",
                )
        if not manifest.layers:
            raise ManifestError(ref.normalized, ref.domain, "malformed manifest: no layers")
        try:
            image = Image(ref.normalized, manifest.layers, digest=top)
        except FastmatchError as exc:
            raise ManifestError(ref.normalized, ref.domain, f"malformed manifest: {exc}") from None
        if warning:
            log.warning("%s", warning)
        return Resolution(given, image, manifest_digest, chosen, source, warning)

    def _tag_digest(
        self, ref: ImageReference, local_only: bool = False
    ) -> tuple[str, Source, str | None]:
        """What the tag points to now: from a fresh cache entry, the registry, or a stale
        entry when the registry cannot answer."""
        key = ref.normalized
        entry = self.cache.get_tag(key)
        if entry is not None and (self.offline or self.cache.fresh(entry)):
            return entry.digest, "cache", None
        if local_only and not self.offline:
            raise _NeedsNetwork
        if self.offline:
            raise ReferenceNotFoundError(
                key, ref.domain, "not in the catalog nor the cache, and resolving offline"
            )
        try:
            if entry is not None:
                # Revalidate with HEAD: cheaper, and not counted by Docker Hub's pull limit.
                head = self.client.fetch_manifest(ref, ref.tag or "latest", head=True)
                digest = head.headers.get("docker-content-digest", "")
                if digest == entry.digest:
                    self.cache.put_tag(key, digest)
                    return digest, "registry", None
            response = self.client.fetch_manifest(ref, ref.tag or "latest")
        except (RegistryUnreachableError, RegistryUnavailableError) as exc:
            if entry is None or not self.serve_stale:
                raise
            age = _age(entry.age())
            warning = (
                f"{key}: registry {ref.domain} cannot be reached ({exc.detail}); using the "
                f"cached digest {entry.digest} from {age} ago"
            )
            return entry.digest, "stale-cache", warning
        digest = self._verified(ref, response, None)
        self.cache.put_manifest(digest, _content_type(response), response.body)
        self.cache.put_tag(key, digest)
        return digest, "registry", None

    def _manifest(
        self, ref: ImageReference, digest: str, local_only: bool = False
    ) -> tuple[str, bytes, bool]:
        """A manifest by digest: from the cache, else the registry (then cached)."""
        cached = self.cache.get_manifest(digest)
        if cached is not None:
            return cached[0], cached[1], False
        if local_only and not self.offline:
            raise _NeedsNetwork
        if self.offline:
            raise ReferenceNotFoundError(
                ref.normalized, ref.domain,
                f"manifest {digest} is not in the cache, and resolving offline",
            )
        response = self.client.fetch_manifest(ref, digest)
        self._verified(ref, response, digest)
        media_type = _content_type(response)
        self.cache.put_manifest(digest, media_type, response.body)
        return media_type, response.body, True

    def _verified(self, ref: ImageReference, response: Response, expected: str | None) -> str:
        """The digest of a fetched manifest, checked against what was asked and what the
        registry claims."""
        claimed = response.headers.get("docker-content-digest") or None
        want = expected or claimed
        algorithm = want.partition(":")[0] if want else "sha256"
        try:
            actual = compute_digest(response.body, algorithm)
        except ManifestProblem as exc:
            raise ManifestError(ref.normalized, ref.domain, str(exc)) from None
        for what, value in (("asked for", expected), ("announced by the registry", claimed)):
            if value is not None and value.partition(":")[0] == algorithm and value != actual:
                raise ManifestError(
                    ref.normalized, ref.domain,
                    f"manifest digest mismatch: {what} {value}, content is {actual}",
                )
        return actual

    def _parse(
        self, ref: ImageReference, body: bytes, media_type: str
    ) -> ImageManifest | ManifestIndex:
        try:
            return parse_manifest(body, media_type)
        except ManifestProblem as exc:
            raise ManifestError(ref.normalized, ref.domain, str(exc)) from None
        except FastmatchError as exc:  # a layer digest the model refuses
            raise ManifestError(ref.normalized, ref.domain, f"malformed manifest: {exc}") from None


def _platform(text: str) -> Platform:
    return Platform.parse(text)


def _content_type(response: Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
