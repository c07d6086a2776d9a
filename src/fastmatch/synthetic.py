"""Synthetic clusters: image caches and pods with realistic layer sharing.

:func:`synthetic_cluster` builds, deterministically from a seed, a cluster of
image caches and a stream of pods to match against them, for the demo, the
benchmarks and the tests.  Every distribution is modeled on a published
measurement or on ECI's documented limits; the source is named next to each
parameter below.

The shape of the cluster:

* **Layers.**  Compressed layer sizes are log-normal with median 4 MB and
  90th percentile 63 MB, heavy-tailed (Zhao et al., "Large-scale analysis of
  the Docker Hub dataset", IEEE CLUSTER 2019: half of the layers are smaller
  than 4 MB, 90% smaller than 63 MB).
* **Base images.**  A dozen popular base images (OS roots such as Alpine,
  Debian and Ubuntu, and language runtimes built on them).  Most application
  images are built ``FROM`` one of them, so a handful of base layers appear in
  a large share of caches, while most layers belong to a single image (Zhao et
  al. find that only a small fraction of layers is shared, and a few shared
  layers are referenced by a large share of images).
* **Application images.**  Layers per image are log-normal with median 8 and
  90th percentile 18 (Zhao et al., same paper), base layers included.  Every
  application repository has several tags (versions); each tag shares most
  layers with the previous one and replaces only its top one to three layers
  (the usual Dockerfile: base, dependencies, then the application code).
* **Workloads.**  A pod runs its application's image plus 0 to 3 sidecars
  (service-mesh proxy, log shipper, ...): pods have 1 to 4 distinct images,
  mostly 1.  Application popularity is Zipf-like, as workload popularity in
  production clusters is.
* **Caches.**  1 to 20 images (ECI's limit), mostly small: a cache is made for
  one workload (ECI auto-creates one per pod that misses) and sometimes bundles
  a few more workloads' images.  Phases mostly ``Ready``, some ``Creating``,
  ``Preparing``, ``Failed``, ``Updating``; creation times spread over half a
  year; some caches carry a retention or are auto-created, so some have
  expired at :attr:`SyntheticCluster.now` and others are about to.
* **Pods.**  Mostly the workload's latest tag (often cached), sometimes an
  older tag, sometimes a release newer than any cache (which shares most
  layers with a cached tag: a partial hit), and tail workloads that no cache
  serves (a miss): together a mix of full hits, partial hits and misses.

Objects are shared as in a real cluster: a :class:`~fastmatch.Layer` or
:class:`~fastmatch.Image` exists once and is referenced by every cache and pod
that holds it, which also keeps construction cheap (about 2,000 caches and
10,000 pods in well under a second; 100,000 caches in seconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from fastmatch.model import MAX_IMAGES_PER_CACHE, Image, ImageCache, Layer, Phase
from fastmatch.policy import MatchPolicy

__all__ = [
    "LAYERS_MEDIAN",
    "LAYERS_P90",
    "LAYER_BYTES_MEDIAN",
    "LAYER_BYTES_P90",
    "SyntheticCluster",
    "synthetic_cluster",
]

# -- published distributions ---------------------------------------------------

# Zhao et al., "Large-scale analysis of the Docker Hub dataset", CLUSTER 2019:
# layers per image, median 8 and 90th percentile 18 ...
LAYERS_MEDIAN = 8
LAYERS_P90 = 18
# ... compressed layer sizes, half under 4 MB, 90% under 63 MB.
LAYER_BYTES_MEDIAN = 4_000_000
LAYER_BYTES_P90 = 63_000_000
# Docker refuses images with more than 127 layers; the tail is clipped well below.
_MAX_LAYERS = 100
_Z90 = 1.2815515655446004  # the standard normal's 90th percentile
_LAYERS_SIGMA = math.log(LAYERS_P90 / LAYERS_MEDIAN) / _Z90
_BYTES_SIGMA = math.log(LAYER_BYTES_P90 / LAYER_BYTES_MEDIAN) / _Z90
_MIN_LAYER_BYTES = 32  # an empty tar layer, gzipped
_MAX_LAYER_BYTES = 8 * 10**9

# Popular base images: (reference, parent, own layers, root layer bytes or 0 for
# drawn, share of application images built on it).  The shares follow the
# ranking of the most-pulled official images on Docker Hub; an OS root is a
# single layer of its published compressed size.
_BASES: tuple[tuple[str, str | None, int, int, float], ...] = (
    ("docker.io/library/alpine:3.19", None, 1, 3_400_000, 0.10),
    ("docker.io/library/debian:bookworm-slim", None, 1, 29_000_000, 0.08),
    ("docker.io/library/ubuntu:22.04", None, 1, 29_500_000, 0.08),
    ("registry.access.redhat.com/ubi9/ubi-minimal:9.3", None, 1, 38_000_000, 0.03),
    ("gcr.io/distroless/base-debian12:latest", None, 2, 0, 0.05),
    ("docker.io/library/python:3.11-slim", "docker.io/library/debian:bookworm-slim", 4, 0, 0.15),
    ("docker.io/library/node:20-slim", "docker.io/library/debian:bookworm-slim", 4, 0, 0.12),
    ("docker.io/library/eclipse-temurin:17-jre", "docker.io/library/ubuntu:22.04", 3, 0, 0.12),
    ("docker.io/library/golang:1.22", "docker.io/library/debian:bookworm-slim", 3, 0, 0.04),
    ("docker.io/library/nginx:1.25", "docker.io/library/debian:bookworm-slim", 5, 0, 0.08),
    ("docker.io/library/python:3.11-alpine", "docker.io/library/alpine:3.19", 4, 0, 0.07),
    ("docker.io/library/node:20-alpine", "docker.io/library/alpine:3.19", 3, 0, 0.08),
)

# Sidecars: (repository, base, own layers, share of sidecar containers).
_SIDECARS: tuple[tuple[str, str | None, int, float], ...] = (
    ("docker.io/istio/proxyv2", "docker.io/library/ubuntu:22.04", 3, 0.35),
    ("cr.fluentbit.io/fluent/fluent-bit", "gcr.io/distroless/base-debian12:latest", 2, 0.25),
    ("docker.io/library/busybox", None, 1, 0.15),
    ("docker.io/datadog/agent", "docker.io/library/ubuntu:22.04", 6, 0.10),
    ("docker.io/hashicorp/vault", "docker.io/library/alpine:3.19", 3, 0.08),
    (
        "gcr.io/cloud-sql-connectors/cloud-sql-proxy",
        "gcr.io/distroless/base-debian12:latest",
        1,
        0.07,
    ),
)
_SIDECAR_TAGS = 4
# Containers per pod: 1 to 4 distinct images, mostly 1 (sidecars are 0 to 3).
_SIDECARS_PER_POD = (0.72, 0.18, 0.07, 0.03)
# Tags per application repository: 1 + geometric, capped (several versions in use).
_TAG_P = 0.45
_MAX_TAGS = 8
# How many top layers a new tag replaces (the application code, sometimes deps).
_CHANGED_LAYERS = (0.6, 0.3, 0.1)
# Zipf exponent of workload popularity (caches and pods alike).
_POPULARITY_EXPONENT = 1.0
# Images per cache: a power law on 1..20 (ECI's limit), so mostly 1 or 2.
_CACHE_IMAGES_EXPONENT = 2.2
# Which tag a cache holds: the latest, else an older one.
_CACHE_LATEST = 0.55
# Which tag a pod runs: latest / older / a release newer than every cache.
_POD_TAG = (0.62, 0.23, 0.15)
# ECI phases (mostly Ready).
_PHASES: tuple[tuple[Phase, float], ...] = (
    (Phase.READY, 0.90),
    (Phase.CREATING, 0.03),
    (Phase.PREPARING, 0.01),
    (Phase.FAILED, 0.03),
    (Phase.UPDATING, 0.02),
    (Phase.UPDATE_FAILED, 0.01),
)
_MAX_AGE_DAYS = 180.0
# Share of caches with spec.retentionDays, and the retentions chosen.
_RETENTION_SHARE = 0.2
_RETENTIONS = (60, 90, 180, 365)
# Share of auto-created caches (ECI creates one for a pod that misses), and of
# those the share matched recently.
_AUTO_SHARE = 0.3
_AUTO_MATCHED = 0.9
# A matched auto-created cache was last matched within this many days (ECI keeps
# it 30 days after the last match, so a few are close to expiring).
_MATCHED_WITHIN_DAYS = 32.0
# Cache sizes (GiB): ECI's default 20, sometimes more.
_SIZES_GIB = (20, 20, 20, 20, 20, 20, 30, 40, 50, 100)
# Policies: (perfect-match, match-count, named cache) shares; the rest default.
_POLICY_SHARES = (0.10, 0.08, 0.01)

_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)


@dataclass
class SyntheticCluster:
    """A synthetic cluster: caches, pods to match, one policy per pod, and "now".

    ``images`` is the catalog of every image that exists (bases, sidecars,
    every tag of every application); ``pod_names`` names the pods;
    ``workloads`` says which workload each pod belongs to.  ``seed`` and
    ``params`` say how to build it again.
    """

    caches: list[ImageCache]
    pods: list[list[Image]]
    policies: list[MatchPolicy]
    now: datetime
    images: list[Image] = field(default_factory=list)
    pod_names: list[str] = field(default_factory=list)
    workloads: list[int] = field(default_factory=list)
    seed: int = 0
    params: dict[str, float] = field(default_factory=dict)

    @property
    def layers(self) -> int:
        """How many distinct layers the catalog's images hold."""
        return len({layer.digest for image in self.images for layer in image.layers})

    def pairs(self) -> int:
        """How many (cache, layer) pairs the caches hold (layers counted once per cache)."""
        return sum(
            len({layer.digest for image in c.images for layer in image.layers}) for c in self.caches
        )


class _Gen:
    """The random source and the object factories of one cluster.

    Digests and layer sizes are drawn in large blocks and handed out in
    order: far cheaper than one small draw per image, and as deterministic.
    """

    _BLOCK = 16384

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.n_layers = 0
        self._digests: list[str] = []
        self._sizes: list[int] = []

    def digests(self, n: int) -> list[str]:
        """``n`` random sha256 digests (64 lowercase hex characters)."""
        while len(self._digests) < n:
            blob = self.rng.bytes(32 * self._BLOCK).hex()
            fresh = ["sha256:" + blob[64 * i : 64 * i + 64] for i in range(self._BLOCK)]
            self._digests = fresh + self._digests
        out = self._digests[-n:] if n > 0 else []
        del self._digests[len(self._digests) - len(out) :]
        return out

    def sizes(self, n: int) -> list[int]:
        """``n`` layer sizes with Docker Hub's distribution (median 4 MB, p90 63 MB)."""
        while len(self._sizes) < n:
            drawn = np.exp(self.rng.normal(math.log(LAYER_BYTES_MEDIAN), _BYTES_SIGMA, self._BLOCK))
            clipped = np.clip(drawn, _MIN_LAYER_BYTES, _MAX_LAYER_BYTES).astype(np.int64)
            self._sizes = clipped.tolist() + self._sizes
        out = self._sizes[-n:] if n > 0 else []
        del self._sizes[len(self._sizes) - len(out) :]
        return out

    def layers(self, n: int) -> list[Layer]:
        """``n`` fresh layers with Docker Hub's size distribution."""
        if n <= 0:
            return []
        self.n_layers += n
        return [Layer(d, s) for d, s in zip(self.digests(n), self.sizes(n), strict=True)]

    def layer_counts(self, n: int) -> np.ndarray:
        """Layers per image, Docker Hub's distribution (median 8, p90 18)."""
        drawn = np.exp(self.rng.normal(math.log(LAYERS_MEDIAN), _LAYERS_SIGMA, n))
        return np.clip(np.rint(drawn), 1, _MAX_LAYERS).astype(np.int64)

    def words(self, n: int, length: int) -> list[str]:
        """``n`` random lowercase alphanumeric words."""
        chars = _ALPHABET[self.rng.integers(0, len(_ALPHABET), size=(n, length))]
        return [row.tobytes().decode("ascii") for row in chars]


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf popularity over ``n`` items in a random order."""
    weights: np.ndarray = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    rng.shuffle(weights)
    normalized: np.ndarray = weights / weights.sum()
    return normalized


def _choice(rng: np.random.Generator, probs: Sequence[float], n: int) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def synthetic_cluster(
    n_caches: int,
    n_pods: int,
    *,
    seed: int = 0,
    repos: int | None = None,
    now: datetime | None = None,
    policy_shares: tuple[float, float, float] = _POLICY_SHARES,
    not_ready_share: float | None = None,
) -> SyntheticCluster:
    """Build a synthetic cluster of ``n_caches`` caches and ``n_pods`` pods.

    The same arguments give the same cluster, object for object.  ``repos``
    is the number of application repositories (default: a quarter of the
    caches, at least 40); fewer repositories mean more caches per workload.
    ``now`` is the time at which to match (default 2026-01-01 UTC).
    ``policy_shares`` is the share of pods with perfect-match, with a
    match-count request, and naming a cache (the rest use the default
    policy); pass ``(0, 0, 0)`` for default policies only.
    ``not_ready_share`` overrides the share of caches not ``Ready``
    (default: 10%, split over ECI's other phases).
    """
    if n_caches < 0 or n_pods < 0:
        raise ValueError("n_caches and n_pods must be >= 0")
    gen = _Gen(seed)
    rng = gen.rng
    when = now if now is not None else datetime(2026, 1, 1, tzinfo=timezone.utc)
    n_repos = repos if repos is not None else max(40, n_caches // 4)
    catalog: list[Image] = []

    # Base images: each inherits its parent's layers and adds its own.
    base_layers: dict[str, tuple[Layer, ...]] = {}
    for ref, parent, own, root_bytes, _share in _BASES:
        if root_bytes:
            fresh = [Layer(gen.digests(1)[0], root_bytes)]
            gen.n_layers += 1
        else:
            fresh = gen.layers(own)
        inherited = base_layers[parent] if parent is not None else ()
        base_layers[ref] = inherited + tuple(fresh)
        catalog.append(Image(ref, base_layers[ref], digest=gen.digests(1)[0]))
    base_refs = [b[0] for b in _BASES]
    base_p = [b[4] for b in _BASES]

    # Sidecar images: a few tags each, the newer sharing all but the top layer.
    sidecar_tags: list[list[Image]] = []
    for repo, base, own, _share in _SIDECARS:
        below = base_layers[base] if base is not None else ()
        layers = list(gen.layers(own))
        tags: list[Image] = []
        for t in range(_SIDECAR_TAGS):
            if t:
                layers[-1] = gen.layers(1)[0]
            tags.append(Image(f"{repo}:1.{t}.0", below + tuple(layers), digest=gen.digests(1)[0]))
        catalog.extend(tags)
        sidecar_tags.append(tags)
    sidecar_p = [s[3] for s in _SIDECARS]

    # Application repositories: tags 0..T-1 are released (caches may hold them);
    # tag T is a release newer than every cache, which only pods run.
    repo_base = _choice(rng, base_p, n_repos).tolist()
    repo_layers = gen.layer_counts(n_repos).tolist()
    repo_tags = np.minimum(rng.geometric(_TAG_P, n_repos), _MAX_TAGS).tolist()
    repo_changes = (_choice(rng, _CHANGED_LAYERS, n_repos * (_MAX_TAGS + 1)) + 1).tolist()
    team = rng.integers(0, max(1, n_repos // 25), n_repos).tolist()
    names = gen.words(n_repos, 6)
    app_tags: list[list[Image]] = []
    for r in range(n_repos):
        below = base_layers[base_refs[repo_base[r]]]
        own = max(1, repo_layers[r] - len(below))
        layers = gen.layers(own)
        n_tags = repo_tags[r] + 1
        digests = gen.digests(n_tags)
        repo_ref = f"registry.example.com/team{team[r]:03d}/{names[r]}-{r:x}"
        tags = []
        for t in range(n_tags):
            if t:
                k = min(repo_changes[r * (_MAX_TAGS + 1) + t], own)
                layers[own - k :] = gen.layers(k)
            tags.append(Image(f"{repo_ref}:v1.{t}", below + tuple(layers), digest=digests[t]))
        catalog.extend(tags)
        app_tags.append(tags)

    # Workloads: one per repository, with 0 to 3 distinct sidecars at a fixed
    # version (most on the latest sidecar tag).  Distinct kinds weighted by
    # popularity are drawn at once with the Gumbel-top-k trick.
    n_side = _choice(rng, _SIDECARS_PER_POD, n_repos).tolist()
    keys = np.log(np.asarray(sidecar_p)) + rng.gumbel(size=(n_repos, len(_SIDECARS)))
    kinds = np.argsort(-keys, axis=1).tolist()
    versions = np.where(
        rng.random((n_repos, 3)) < 0.7,
        _SIDECAR_TAGS - 1,
        rng.integers(0, _SIDECAR_TAGS, (n_repos, 3)),
    ).tolist()
    workload_sidecars = [
        tuple(sidecar_tags[kinds[r][i]][versions[r][i]] for i in range(n_side[r]))
        for r in range(n_repos)
    ]
    popularity = _zipf_weights(n_repos, _POPULARITY_EXPONENT, rng)

    def workload_images(r: int, tag: int) -> tuple[Image, ...]:
        return (app_tags[r][tag], *workload_sidecars[r])

    # Caches.
    caches: list[ImageCache] = []
    if n_caches:
        primary = rng.choice(n_repos, size=n_caches, p=popularity).tolist()
        latest = (rng.random(n_caches) < _CACHE_LATEST).tolist()
        older = rng.random(n_caches).tolist()
        k_probs = 1.0 / np.arange(1, MAX_IMAGES_PER_CACHE + 1) ** _CACHE_IMAGES_EXPONENT
        wanted = (_choice(rng, k_probs.tolist(), n_caches) + 1).tolist()
        extra_repos = rng.choice(n_repos, size=(n_caches, MAX_IMAGES_PER_CACHE), p=popularity)
        extra_tags = rng.random((n_caches, MAX_IMAGES_PER_CACHE))
        phase_p = [p for _, p in _PHASES]
        if not_ready_share is not None:
            phase_p = [1.0 - not_ready_share] + [
                p * not_ready_share / (1.0 - _PHASES[0][1]) for p in phase_p[1:]
            ]
        phases = _choice(rng, phase_p, n_caches).tolist()
        # More young caches than old: age = u^1.5 of the span.
        age = (rng.random(n_caches) ** 1.5 * _MAX_AGE_DAYS).tolist()
        retain = (rng.random(n_caches) < _RETENTION_SHARE).tolist()
        retention = rng.choice(np.asarray(_RETENTIONS), size=n_caches).tolist()
        auto = (rng.random(n_caches) < _AUTO_SHARE).tolist()
        matched = (rng.random(n_caches) < _AUTO_MATCHED).tolist()
        matched_ago = (rng.random(n_caches) * _MATCHED_WITHIN_DAYS).tolist()
        sizes = rng.choice(np.asarray(_SIZES_GIB), size=n_caches).tolist()
        ids = gen.words(n_caches, 12)
        phase_of = [phase for phase, _ in _PHASES]
        for c in range(n_caches):
            r = primary[c]
            released = len(app_tags[r]) - 1
            tag = released - 1 if latest[c] else int(older[c] * released)
            held = list(workload_images(r, tag))
            if wanted[c] > len(held):
                extra = zip(extra_repos[c].tolist(), extra_tags[c].tolist(), strict=True)
                for er, u in extra:
                    n_released = len(app_tags[er]) - 1
                    et = n_released - 1 if u < 0.6 else int(u * n_released)
                    img = app_tags[er][et]
                    if img not in held:
                        held.append(img)
                        if len(held) >= wanted[c]:
                            break
            created = when - timedelta(days=age[c])
            is_auto = auto[c]
            last = None
            if is_auto and matched[c]:
                last = max(created, when - timedelta(days=matched_ago[c]))
            caches.append(
                ImageCache(
                    f"imc-{ids[c]}{c:08x}",
                    held[:MAX_IMAGES_PER_CACHE],
                    name=f"auto-create-for-{names[r]}-{c}" if is_auto else f"{names[r]}-v1.{tag}",
                    size_gib=sizes[c],
                    phase=phase_of[phases[c]],
                    created=created,
                    last_matched=last,
                    auto_created=is_auto,
                    retention_days=retention[c] if retain[c] else None,
                )
            )

    # Pods.
    pods: list[list[Image]] = []
    workloads: list[int] = []
    pod_names: list[str] = []
    policies: list[MatchPolicy] = []
    if n_pods:
        which = rng.choice(n_repos, size=n_pods, p=popularity).tolist()
        kind = _choice(rng, _POD_TAG, n_pods).tolist()
        older = rng.random(n_pods).tolist()
        count_u = rng.random(n_pods).tolist()
        suffix = gen.words(n_pods, 5)
        pol = _choice(rng, [*policy_shares, max(0.0, 1.0 - sum(policy_shares))], n_pods)
        named = rng.integers(0, max(1, n_caches), n_pods).tolist()
        default = MatchPolicy()
        perfect = MatchPolicy(perfect_match=True)
        counts = [MatchPolicy(match_count=k) for k in range(1, 5)]
        by_id: dict[str, MatchPolicy] = {}
        for p, how in enumerate(pol.tolist()):
            r = which[p]
            released = len(app_tags[r]) - 1
            if kind[p] == 0:
                tag = released - 1
            elif kind[p] == 1:
                tag = int(older[p] * released)
            else:
                tag = released
            images = [app_tags[r][tag], *workload_sidecars[r]]
            pods.append(images)
            workloads.append(r)
            pod_names.append(f"{names[r]}-{suffix[p]}")
            if how == 0:
                policies.append(perfect)
            elif how == 1:
                policies.append(counts[int(count_u[p] * len(images))])
            elif how == 2 and caches:
                cid = caches[named[p]].id
                policy = by_id.get(cid)
                if policy is None:
                    policy = by_id[cid] = MatchPolicy(cache_id=cid)
                policies.append(policy)
            else:
                policies.append(default)

    return SyntheticCluster(
        caches=caches,
        pods=pods,
        policies=policies,
        now=when,
        images=catalog,
        pod_names=pod_names,
        workloads=workloads,
        seed=seed,
        params={
            "repos": float(n_repos),
            "layers_sigma": _LAYERS_SIGMA,
            "bytes_sigma": _BYTES_SIGMA,
        },
    )
