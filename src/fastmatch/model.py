"""The model objects: layers, images and image caches (SPEC §1).

They are immutable and validated on construction, so everything downstream
(the index, the decision, the adapters) can trust them.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, NoReturn

from fastmatch.digest import validate_digest
from fastmatch.errors import FastmatchError, ValidationError
from fastmatch.imageref import parse_reference
from fastmatch.platforms import normalize_arch, normalize_os
from fastmatch.timeutil import TimeLike, to_datetime, utcnow

__all__ = [
    "MAX_IMAGES_PER_CACHE",
    "MAX_LAYER_SIZE",
    "MAX_SIZE_GIB",
    "MIN_SIZE_GIB",
    "CreateProposal",
    "Image",
    "ImageCache",
    "ImageLike",
    "Layer",
    "LayerLike",
    "Phase",
    "distinct_images",
    "dns_name",
    "proposal_name",
    "same_image",
    "same_image_set",
]

MAX_IMAGES_PER_CACHE = 20  # (ECI)
MIN_SIZE_GIB = 20  # (ECI)
MAX_SIZE_GIB = 32768  # (ECI)
DEFAULT_SIZE_GIB = 20  # (ECI)
# A layer's size in bytes, at most: 1 PiB, so that the sums the core keeps in
# 64-bit integers (a pod's or a cache's bytes, over thousands of layers) never overflow.
MAX_LAYER_SIZE = 2**50
# Kubernetes object names (DNS subdomains): lower case, at most 253 characters.
MAX_NAME_LENGTH = 253
AUTO_CREATE_BASE_GIB = 30  # (ECI) an auto-created cache is 30 GiB plus extra storage

# (ECI) lifecycle: a Failed cache is kept one day; an auto-created cache that was
# never matched seven days; one that was matched, thirty days after the last match.
FAILED_RETENTION = timedelta(days=1)
AUTO_UNMATCHED_RETENTION = timedelta(days=7)
AUTO_MATCHED_RETENTION = timedelta(days=30)

# Pseudo-layer keys live in their own namespace: no OCI digest starts with NUL.
PSEUDO_PREFIX = "\x00"


class LayerSizes(dict[str, int]):
    """Layer keys to sizes, read-only: what an image or a cache holds (see ``layer_sizes``).

    A ``dict`` that refuses changes, so the index's core can read it as a dict.
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("layer sizes are read-only")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (LayerSizes, (dict(self),))

    def __copy__(self) -> LayerSizes:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> LayerSizes:
        return self


class Phase(str, Enum):
    """ECI's ImageCache status values.  Only ``Ready`` caches are usable."""

    PREPARING = "Preparing"
    CREATING = "Creating"
    READY = "Ready"
    FAILED = "Failed"
    UPDATING = "Updating"
    UPDATE_FAILED = "UpdateFailed"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object, where: str = "phase") -> Phase:
        """Read a phase name in any case; raise ``ValidationError`` naming ``where``."""
        if isinstance(value, Phase):
            return value
        if isinstance(value, str):
            folded = value.strip().lower()
            for phase in cls:
                if phase.value.lower() == folded:
                    return phase
        names = ", ".join(p.value for p in cls)
        raise ValidationError(f"{where}: unknown phase {value!r} (expected one of {names})")


def _check_size(size: object, where: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValidationError(f"{where}: size must be an integer, got {size!r}")
    if size < 0:
        raise ValidationError(f"{where}: size must be >= 0, got {size}")
    if size > MAX_LAYER_SIZE:
        raise ValidationError(
            f"{where}: size {size} is larger than any layer can be (at most 2**50 bytes)"
        )
    return size


@dataclass(frozen=True, slots=True)
class Layer:
    """One image layer: its OCI digest and its compressed size in bytes."""

    digest: str
    size: int

    def __post_init__(self) -> None:
        validate_digest(self.digest, "layer")
        _check_size(self.size, f"layer {self.digest}")


LayerLike = Layer | tuple[str, int] | Mapping[str, Any]


def _to_layer(value: LayerLike, where: str) -> Layer:
    if isinstance(value, Layer):
        return value
    try:
        if isinstance(value, Mapping):
            return Layer(value["digest"], value["size"])
        digest, size = value
        return Layer(digest, size)
    except FastmatchError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError):
        raise ValidationError(
            f"{where}: a layer must be a Layer, a (digest, size) pair or "
            f"a mapping with 'digest' and 'size', got {value!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class Image:
    """A container image: its normalized reference, manifest digest and layers.

    ``ref`` is normalized on construction (``nginx`` becomes
    ``docker.io/library/nginx:latest``).  An image whose layers are unknown
    behaves as one pseudo-layer of size 0 named by its identity, so it
    matches only a cache that holds the same reference (SPEC §1).
    """

    ref: str
    layers: tuple[Layer, ...] = ()
    digest: str | None = None
    # What layer_sizes() hands out: always the same object, so that the index's
    # core can remember how it encoded the image.
    _sizes: LayerSizes = field(init=False, repr=False, compare=False, hash=False)
    # The digests of its layers, made when first asked (a catalog read in C leaves it
    # None: few of a cluster's images are ever asked).
    _layer_set: frozenset[str] | None = field(init=False, repr=False, compare=False, hash=False)
    # Its identities (what ``keys`` gives) and their pseudo-layer keys: asked for by every
    # cache that lists the image, ten thousand at a time.
    _keys: tuple[str, ...] = field(init=False, repr=False, compare=False, hash=False)
    _pseudo: tuple[str, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __init__(
        self, ref: str, layers: Iterable[LayerLike] = (), digest: str | None = None
    ) -> None:
        parsed = parse_reference(ref)
        where = f"image {ref!r}"
        if digest is not None:
            validate_digest(digest, f"{where} manifest")
            if parsed.digest is not None and parsed.digest != digest:
                raise ValidationError(
                    f"{where}: manifest digest {digest} differs from the reference's "
                    f"digest {parsed.digest}"
                )
        elif parsed.digest is not None:
            digest = parsed.digest
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise ValidationError(
                f"{where}: layers must be a sequence of layers, got {type(layers).__name__}"
            )
        built = tuple(_to_layer(layer, f"{where} layer {i}") for i, layer in enumerate(layers))
        sizes: dict[str, int] = {}
        for layer in built:
            if sizes.setdefault(layer.digest, layer.size) != layer.size:
                raise ValidationError(
                    f"{where}: layer {layer.digest} is listed with sizes "
                    f"{sizes[layer.digest]} and {layer.size}"
                )
        object.__setattr__(self, "ref", parsed.normalized)
        object.__setattr__(self, "layers", built)
        key = digest if digest is not None else parsed.normalized
        object.__setattr__(self, "digest", digest)
        self._keep(sizes if built else {PSEUDO_PREFIX + key: 0})

    def _keep(self, sizes: dict[str, int]) -> None:
        object.__setattr__(self, "_sizes", LayerSizes(sizes))
        object.__setattr__(self, "_layer_set", frozenset(sizes) if self.layers else frozenset())
        self._identify()

    def _identify(self) -> None:
        """Keep the image's identities and their pseudo-layer keys (its ref and digest set)."""
        digest, ref = self.digest, self.ref
        if digest is None:
            keys: tuple[str, ...] = (ref,)
        elif ref.endswith("@" + digest):
            keys = (digest,)
        else:
            keys = (ref, digest)
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_pseudo", tuple(PSEUDO_PREFIX + key for key in keys))

    def __reduce__(self) -> tuple[Any, ...]:
        return (trusted_image, (self.ref, self.layers, self.digest))

    @property
    def key(self) -> str:
        """The identity of the image when its layers are unknown: digest, else reference."""
        return self.digest if self.digest is not None else self.ref

    @property
    def keys(self) -> tuple[str, ...]:
        """Every identity a cache holding this image answers to: reference and digest."""
        return self._keys

    @property
    def pseudo_keys(self) -> tuple[str, ...]:
        """The pseudo-layer keys of :attr:`keys` (SPEC §1): what a cache holding this
        image holds besides its layers."""
        return self._pseudo

    @property
    def layer_set(self) -> frozenset[str]:
        """The digests of the image's layers (empty when they are unknown)."""
        found = self._layer_set
        if found is None:
            found = frozenset(self._sizes) if self.layers else frozenset()
            _SET_LAYER_SET(self, found)
        return found

    @property
    def layers_known(self) -> bool:
        """Whether the image's layers were resolved."""
        return bool(self.layers)

    def layer_sizes(self) -> Mapping[str, int]:
        """The image's distinct layers, digest to size; the pseudo-layer if none are known.

        Read-only, and the same object at every call.
        """
        return self._sizes

    @property
    def size(self) -> int:
        """Bytes of the image's distinct layers."""
        return sum(self._sizes.values())


ImageLike = Image | str


def _to_image(value: ImageLike, where: str) -> Image:
    if isinstance(value, Image):
        return value
    if isinstance(value, str):
        try:
            return Image(value)
        except FastmatchError as exc:
            raise type(exc)(f"{where}: {exc}") from None
    raise ValidationError(f"{where}: expected an Image or a reference string, got {value!r}")


def _optional_time(value: TimeLike | None, where: str) -> datetime | None:
    return None if value is None else to_datetime(value, where)




@dataclass(frozen=True, slots=True)
class ImageCache:
    """An image cache: a snapshot of the layers of 1 to 20 images (SPEC §1).

    ``expires`` is an explicit expiry (ECI's ``ExpireDateTime``);
    ``retention_days`` is ``spec.retentionDays``.  :attr:`expires_at` folds
    them with ECI's lifecycle rules (SPEC §4).
    """

    id: str
    images: tuple[Image, ...]
    name: str = ""
    size_gib: int = DEFAULT_SIZE_GIB
    phase: Phase = Phase.READY
    created: datetime = field(default_factory=utcnow)
    expires: datetime | None = None
    last_matched: datetime | None = None
    auto_created: bool = False
    arch: str | None = None
    os: str | None = None
    retention_days: int | None = None
    # Derived from the images once (see _derive): the distinct layers with the
    # identities' pseudo-layers, their read-only view, the bytes, and the
    # identities of the images listed by reference only.  A bulk reader (see
    # inputs/_fastcaches.pyx) checks the layers and sums the bytes, and leaves the
    # merged layers (None) to layer_sizes(), which few callers of a cluster's
    # ten thousand caches ask for.
    _sizes: LayerSizes | None = field(init=False, repr=False, compare=False, hash=False)
    _bytes: int = field(init=False, repr=False, compare=False, hash=False)
    _by_reference: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)

    def __init__(
        self,
        id: str,
        images: Iterable[ImageLike],
        *,
        name: str = "",
        size_gib: int = DEFAULT_SIZE_GIB,
        phase: Phase | str = Phase.READY,
        created: TimeLike | None = None,
        expires: TimeLike | None = None,
        last_matched: TimeLike | None = None,
        auto_created: bool = False,
        arch: str | None = None,
        os: str | None = None,
        retention_days: int | None = None,
    ) -> None:
        if not isinstance(id, str) or not id.strip() or id != id.strip():
            raise ValidationError(f"image cache id must be a non-empty string, got {id!r}")
        where = f"image cache {id}"
        if isinstance(images, (str, Image)):
            images = [images]
        if not isinstance(images, Iterable):
            raise ValidationError(
                f"{where}: images must be a list of images, got {type(images).__name__}"
            )
        built = tuple(_to_image(image, f"{where} image {i}") for i, image in enumerate(images))
        if not 1 <= len(built) <= MAX_IMAGES_PER_CACHE:
            raise ValidationError(
                f"{where}: holds {len(built)} images; a cache holds 1 to {MAX_IMAGES_PER_CACHE}"
            )
        if not isinstance(name, str):
            raise ValidationError(f"{where}: name must be a string, got {name!r}")
        if isinstance(size_gib, bool) or not isinstance(size_gib, int):
            raise ValidationError(f"{where}: size_gib must be an integer, got {size_gib!r}")
        if not MIN_SIZE_GIB <= size_gib <= MAX_SIZE_GIB:
            raise ValidationError(
                f"{where}: size_gib {size_gib} is outside {MIN_SIZE_GIB}..{MAX_SIZE_GIB}"
            )
        if not isinstance(auto_created, bool):
            raise ValidationError(f"{where}: auto_created must be a bool, got {auto_created!r}")
        if retention_days is not None and (
            isinstance(retention_days, bool)
            or not isinstance(retention_days, int)
            or retention_days < 1
        ):
            raise ValidationError(
                f"{where}: retention_days must be a positive integer, got {retention_days!r}"
            )
        created_at = _optional_time(created, f"{where} created")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "images", built)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "size_gib", size_gib)
        object.__setattr__(self, "phase", Phase.parse(phase, f"{where} phase"))
        object.__setattr__(self, "created", created_at if created_at is not None else utcnow())
        object.__setattr__(self, "expires", _optional_time(expires, f"{where} expires"))
        object.__setattr__(
            self, "last_matched", _optional_time(last_matched, f"{where} last_matched")
        )
        object.__setattr__(self, "auto_created", auto_created)
        object.__setattr__(self, "arch", normalize_arch(arch, f"{where} arch"))
        object.__setattr__(self, "os", normalize_os(os, f"{where} os"))
        object.__setattr__(self, "retention_days", retention_days)
        self._derive()  # a layer listed with two sizes is bad input

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {f: getattr(self, f) for f in _CACHE_FIELDS}
        return (trusted_cache, (fields,))

    def replace(self, **changes: Any) -> ImageCache:
        """A copy with some fields changed, validated like a new one."""
        return replace(self, **changes)

    @property
    def ready(self) -> bool:
        """Whether the cache is usable (phase ``Ready``)."""
        return self.phase is Phase.READY

    @property
    def expires_at(self) -> datetime | None:
        """When the cache expires under ECI's rules (SPEC §4), or ``None`` for never.

        The earliest of: the explicit ``expires``; ``created`` plus
        ``retention_days``; for a ``Failed`` cache, a day after creation; for
        an auto-created cache, 7 days after creation if never matched, else
        30 days after the last match.
        """
        limits: list[datetime] = []
        if self.expires is not None:
            limits.append(self.expires)
        if self.retention_days is not None:
            limits.append(self.created + timedelta(days=self.retention_days))
        if self.phase is Phase.FAILED:
            limits.append(self.created + FAILED_RETENTION)
        if self.auto_created:
            if self.last_matched is None:
                limits.append(self.created + AUTO_UNMATCHED_RETENTION)
            else:
                limits.append(self.last_matched + AUTO_MATCHED_RETENTION)
        return min(limits) if limits else None

    def expired(self, now: datetime) -> bool:
        """Whether the cache has expired at ``now``."""
        at = self.expires_at
        return at is not None and at <= now

    def layer_sizes(self) -> Mapping[str, int]:
        """The cache's distinct layers, digest to size.

        Each image also contributes the pseudo-layers of its identities
        (size 0), so a pod image whose layers are unknown matches a cache that
        holds the same reference or digest.
        """
        sizes = self._sizes
        if sizes is None:  # a bulk reader left it to be merged when first asked
            self._derive()  # the same values again, and the merge
            sizes = self._sizes
            assert sizes is not None
        return sizes

    @property
    def bytes(self) -> int:
        """Bytes of the cache's distinct layers."""
        return self._bytes

    def _derive(self) -> None:
        """Compute, once, what the cache's images imply: its distinct layers and their
        sizes (with its images' identities as pseudo-layers), its bytes, and the
        identities of the images it lists by reference only."""
        sizes: dict[str, int] = {}
        parts: list[LayerSizes] = []
        identities: list[str] = []
        by_reference: list[str] = []
        walk = False  # whether the layers must be walked one by one (see below)
        for image in self.images:
            identities.extend(image._pseudo)
            layers = image.layers
            if layers:
                part = image._sizes
                parts.append(part)
                sizes.update(part)  # merged in C
                walk = walk or len(part) != len(layers)  # a layer twice in one image
            else:
                by_reference.extend(image._keys)
        if len(parts) > 1 and not walk:
            # A layer in two images must have one size: each image's sizes lie within
            # the merge (compared in C).
            merged = sizes.items()
            walk = not all(part.items() <= merged for part in parts)
        if walk:  # the slow way, which words the layer listed with two sizes
            sizes = self._checked_sizes()
        sizes.update(dict.fromkeys(identities, 0))
        _SET_SIZES(self, LayerSizes(sizes))
        _SET_BYTES(self, sum(sizes.values()))
        _SET_BY_REFERENCE(self, frozenset(by_reference))

    def _checked_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for image in self.images:
            for layer in image.layers:
                if sizes.setdefault(layer.digest, layer.size) != layer.size:
                    raise ValidationError(
                        f"image cache {self.id}: layer {layer.digest} is listed with sizes "
                        f"{sizes[layer.digest]} and {layer.size}"
                    )
        return sizes

    @property
    def by_reference(self) -> frozenset[str]:
        """The identities (references and digests) of the images the cache lists by
        reference only, their layers unknown: a pod image with one of them is held
        whole, whatever its layers (SPEC §1)."""
        return self._by_reference


def distinct_images(images: Iterable[ImageLike], where: str = "pod") -> tuple[Image, ...]:
    """A pod's distinct images, in first-seen order.

    Images are the same when their identities are; of two copies, the one
    whose layers are known is kept.
    """
    if isinstance(images, (str, Image)):
        images = [images]
    elif type(images) is not list and type(images) is not tuple and (
        isinstance(images, bytes) or not isinstance(images, Iterable)  # an ABC check: slow
    ):
        raise ValidationError(
            f"{where}: images must be a list of images or references, "
            f"got {type(images).__name__}"
        )
    if type(images) is list and len(images) == 1 and type(images[0]) is Image:
        return (images[0],)  # the common pod: one container, its image resolved
    seen: dict[str, Image] = {}
    for i, value in enumerate(images):
        # Where an image is wrong is worded only when it is.
        image = value if type(value) is Image else _to_image(value, f"{where} image {i}")
        key = image.digest if image.digest is not None else image.ref  # image.key
        kept = seen.get(key)
        if kept is None or (not kept.layers and image.layers):
            seen[key] = image
    return tuple(seen.values())


def same_image(a: Image, b: Image) -> bool:
    """Whether ``a`` and ``b`` are the same image (SPEC §1).

    When both know their layers, they are the same when their layers are: a tag
    that moved to new layers is another image.  When either is known only by
    reference, a shared reference or manifest digest makes them the same.
    """
    if a.layers and b.layers:
        return a.layer_set == b.layer_set
    return any(key in b.keys for key in a.keys)


def same_image_set(a: Iterable[Image], b: Iterable[Image]) -> bool:
    """Whether two lists of images hold the same images, each as :func:`same_image` says."""
    left, right = tuple(a), tuple(b)
    return all(any(same_image(x, y) for y in right) for x in left) and all(
        any(same_image(y, x) for x in left) for y in right
    )


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NOT_DNS = re.compile(r"[^a-z0-9.-]+")
_DOTS = re.compile(r"[.-]*\.[.-]*")
PROPOSAL_PREFIX = "auto-create-for-"


def dns_name(text: str, fallback: str = "pod") -> str:
    """``text`` as a valid Kubernetes object name (an RFC 1123 subdomain).

    Lower case; runs of other characters become ``-``; dots only between
    letters or digits; it starts and ends with one; at most 253 characters (a
    longer name keeps its start and a hash of the whole, so two stay apart).

    >>> dns_name("Web_Server.0"), dns_name("--"), len(dns_name("x" * 300))
    ('web-server.0', 'pod', 253)
    """
    if len(text) <= MAX_NAME_LENGTH and _DNS_NAME.fullmatch(text):
        return text  # the common case: a pod's name is already one
    name = _DOTS.sub(".", _NOT_DNS.sub("-", text.lower())).strip(".-")
    if not name:
        return fallback
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        name = name[: MAX_NAME_LENGTH - 11].rstrip(".-") + "-" + digest
    return name


@functools.lru_cache(maxsize=4096)  # replicas and retries ask for the same names
def proposal_name(pod_name: str) -> str:
    """The name of the cache proposed for a pod (SPEC §3.7): ``auto-create-for-<pod>``,
    a valid Kubernetes name whatever the pod's name is.

    >>> proposal_name("web-0"), proposal_name("")
    ('auto-create-for-web-0', 'auto-create-for-pod')
    """
    rest = dns_name(pod_name)
    if len(rest) > MAX_NAME_LENGTH - len(PROPOSAL_PREFIX):
        rest = rest[: MAX_NAME_LENGTH - len(PROPOSAL_PREFIX)].rstrip(".-")
    return PROPOSAL_PREFIX + rest


@dataclass(frozen=True, slots=True)
class CreateProposal:
    """A cache fastmatch proposes to create for a pod that no cache serves fully.

    Always within ECI's limits (1 to 20 images, at most 32768 GiB, a valid
    name), so :meth:`to_cache` never fails.
    """

    name: str
    images: tuple[Image, ...]
    size_gib: int
    auto_created: bool = True

    @classmethod
    def within_limits(cls, name: str, images: tuple[Image, ...], size_gib: int) -> CreateProposal:
        """A proposal from parts the decision already kept within ECI's limits (made
        without a frozen dataclass's per-field ``__setattr__``: one is made per miss)."""
        proposal = object.__new__(cls)
        _PROPOSAL_NAME.__set__(proposal, name)
        _PROPOSAL_IMAGES.__set__(proposal, images)
        _PROPOSAL_SIZE.__set__(proposal, size_gib)
        _PROPOSAL_AUTO.__set__(proposal, True)
        return proposal

    def to_cache(
        self,
        id: str | None = None,
        *,
        created: TimeLike | None = None,
        phase: Phase | str = Phase.CREATING,
    ) -> ImageCache:
        """The proposal as the :class:`ImageCache` it would become (``Creating`` by
        default; its id is its name unless one is given)."""
        return ImageCache(
            id if id is not None else self.name,
            self.images,
            name=self.name,
            size_gib=self.size_gib,
            phase=phase,
            created=created,
            auto_created=self.auto_created,
        )


# The slots of CreateProposal, written directly by CreateProposal.within_limits.
_PROPOSAL_NAME = vars(CreateProposal)["name"]
_PROPOSAL_IMAGES = vars(CreateProposal)["images"]
_PROPOSAL_SIZE = vars(CreateProposal)["size_gib"]
_PROPOSAL_AUTO = vars(CreateProposal)["auto_created"]


# -- trusted construction ------------------------------------------------------
# For data fastmatch itself validated and stored (index snapshots, pickles), or
# that a reader of fastmatch.inputs checked field by field as it read them:
# building the objects without re-checking what was checked.  Nothing else
# should call these.


def trusted_layer(digest: str, size: int) -> Layer:
    """A layer from fields fastmatch validated before (no checks)."""
    layer = object.__new__(Layer)
    object.__setattr__(layer, "digest", digest)
    object.__setattr__(layer, "size", size)
    return layer


def trusted_image(ref: str, layers: tuple[Layer, ...], digest: str | None) -> Image:
    """An image from fields fastmatch validated before (no checks)."""
    image = object.__new__(Image)
    object.__setattr__(image, "ref", ref)
    object.__setattr__(image, "layers", layers)
    object.__setattr__(image, "digest", digest)
    key = digest if digest is not None else ref
    sizes = {layer.digest: layer.size for layer in layers} if layers else {PSEUDO_PREFIX + key: 0}
    image._keep(sizes)
    return image


_CACHE_FIELDS = (
    "id",
    "images",
    "name",
    "size_gib",
    "phase",
    "created",
    "expires",
    "last_matched",
    "auto_created",
    "arch",
    "os",
    "retention_days",
)


def trusted_cache(fields: dict[str, Any], like: ImageCache | None = None) -> ImageCache:
    """A cache from fields fastmatch validated before (its derived fields computed anew).

    ``like``: a cache whose ``images`` are the very tuple ``fields`` holds; its derived
    fields (which depend on the images alone) are shared instead of computed again, as
    when a watch delivers many caches, or many versions of one, listing one image set.
    """
    return trusted_cache_of(**fields, like=like)


def trusted_cache_of(
    id: str,
    images: tuple[Image, ...],
    name: str,
    size_gib: int,
    phase: Phase,
    created: datetime,
    expires: datetime | None,
    last_matched: datetime | None,
    auto_created: bool,
    arch: str | None,
    os: str | None,
    retention_days: int | None,
    like: ImageCache | None = None,
) -> ImageCache:
    """:func:`trusted_cache` with the fields as arguments: what a reader of ten thousand
    caches calls (no dict per cache; each slot written through its descriptor)."""
    cache = _NEW(ImageCache)
    _SET_ID(cache, id)
    _SET_IMAGES(cache, images)
    _SET_NAME(cache, name)
    _SET_SIZE_GIB(cache, size_gib)
    _SET_PHASE(cache, phase)
    _SET_CREATED(cache, created)
    _SET_EXPIRES(cache, expires)
    _SET_LAST_MATCHED(cache, last_matched)
    _SET_AUTO_CREATED(cache, auto_created)
    _SET_ARCH(cache, arch)
    _SET_OS(cache, os)
    _SET_RETENTION_DAYS(cache, retention_days)
    if like is not None and like.images is images:
        _SET_SIZES(cache, like._sizes)
        _SET_BYTES(cache, like._bytes)
        _SET_BY_REFERENCE(cache, like._by_reference)
    else:
        cache._derive()
    return cache


_SET_LAYER_SET = vars(Image)["_layer_set"].__set__  # Image is frozen: its own slot, once


# The slots of ImageCache's fields, written directly (a frozen dataclass refuses
# setattr): by trusted_cache_of, ten thousand caches at a time, and by _derive.
_NEW = object.__new__
(_SET_ID, _SET_IMAGES, _SET_NAME, _SET_SIZE_GIB, _SET_PHASE, _SET_CREATED, _SET_EXPIRES,
 _SET_LAST_MATCHED, _SET_AUTO_CREATED, _SET_ARCH, _SET_OS, _SET_RETENTION_DAYS, _SET_SIZES,
 _SET_BYTES, _SET_BY_REFERENCE) = (
    vars(ImageCache)[name].__set__
    for name in (*_CACHE_FIELDS, "_sizes", "_bytes", "_by_reference")
)
