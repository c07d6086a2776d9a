"""ImageCaches as the cluster and ECI's API give them, into :class:`~fastmatch.ImageCache`.

Two shapes (SPEC §6):

- the Kubernetes ``ImageCache`` object (``eci.alibabacloud.com/v1``, cluster
  scoped): ``spec.images``, ``spec.imageCacheSize``, ``spec.retentionDays``,
  ``status.phase``, ``status.imageCacheId``, ``status.expireDateTime``,
  ``metadata.creationTimestamp``.  A cache is identified by
  ``status.imageCacheId``; a new object that ECI has not given an id yet is
  identified by its name (:func:`has_cache_id` tells which);
- the JSON of ECI's ``DescribeImageCaches`` (``ImageCaches[]``:
  ``ImageCacheId``, ``ImageCacheName``, ``Images``, ``Status``,
  ``CreationTime``, ``ExpireDateTime``, ``LastMatchedTime``,
  ``ImageCacheSize``, ``EliminationStrategy``).

A cache is auto-created (SPEC §4) when ECI's naming says so
(``auto-create-for-…``), when fastmatch's webhook made it (the label
``app.kubernetes.io/managed-by: fastmatch``) or when the API says it may be
evicted (``EliminationStrategy: LRU``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

from fastmatch.errors import FastmatchError, InputFileError
from fastmatch.inputs._fastcaches import PlainCaches
from fastmatch.inputs.documents import (
    FieldError,
    Located,
    bulk,
    field_error,
    label,
    read_objects,
)
from fastmatch.inputs.images import ImageReader
from fastmatch.inputs.source import LayerSource
from fastmatch.model import (
    MAX_IMAGES_PER_CACHE,
    MAX_SIZE_GIB,
    MIN_SIZE_GIB,
    PROPOSAL_PREFIX,
    Image,
    ImageCache,
    Phase,
    trusted_cache_of,
)
from fastmatch.timeutil import TimeLike, to_datetime, utcnow

__all__ = [
    "API_VERSION",
    "KIND",
    "MANAGED_BY",
    "ImageSets",
    "cache_from_describe",
    "cache_from_object",
    "has_cache_id",
    "read_caches",
    "unique_caches",
]

API_VERSION = "eci.alibabacloud.com/v1"
KIND = "ImageCache"
MANAGED_BY = ("app.kubernetes.io/managed-by", "fastmatch")  # the label the webhook sets

_PHASES = {phase.value: phase for phase in Phase}
_FIRST = itemgetter(0)
_ID = attrgetter("id")
_PHASE_NAMES = ", ".join(_PHASES)


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON and YAML give: no ABC check
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        field_error(field, f"expected an object, got {type(value).__name__}")
    return value


def _text(value: object, field: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            field_error(field, "missing")
        return None
    if not isinstance(value, str):
        field_error(field, f"expected a string, got {value!r}")
    return value


def _int(value: object, field: str, low: int, high: int, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value)  # ECI's API and hand-written YAML quote numbers at times
    if isinstance(value, bool) or not isinstance(value, int):
        field_error(field, f"expected {what}, got {value!r}")
    if not low <= value <= high:
        field_error(field, f"{value} is outside {low}..{high}")
    return value


_from_iso = datetime.fromisoformat


def _time(value: object, field: str) -> datetime | None:
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T":
        # Kubernetes' own form (2025-10-18T20:51:23Z), which fromisoformat reads as
        # UTC as it is; anything else, or a bad one, is read (and worded) below.
        try:
            return _from_iso(value)
        except ValueError:
            pass
    if value is None or value == "":
        return None
    if not isinstance(value, (str, datetime)):  # YAML reads an unquoted timestamp as a datetime
        field_error(field, f"expected a time (RFC 3339), got {value!r}")
    try:
        return to_datetime(value, field)
    except FastmatchError:
        field_error(field, f"expected a time (RFC 3339), got {value!r}")


def _phase(value: object, field: str, default: Phase) -> Phase:
    if value is None or value == "":
        return default
    found = _PHASES.get(value) if isinstance(value, str) else None
    if found is None and isinstance(value, str):  # ECI spells them so; people may not
        found = next((p for name, p in _PHASES.items() if name.lower() == value.lower()), None)
    if found is None:
        field_error(field, f"unknown phase {value!r} (expected one of {_PHASE_NAMES})")
    return found


class ImageSets:
    """The image lists a long-lived reader of ImageCaches has read (the cluster sync's):
    each list of references, the images it gave and a cache built from them.

    A watch brings many caches, and many versions of one cache, listing one image
    set: the next is read without looking its references up again, and shares the
    images tuple and what the cache derives from it (its layers, its bytes) with the
    first.  Only lists that were read well are kept, so bad input is reported as
    without it.  ``reader`` looks the references up; at most ``limit`` lists are kept
    (all forgotten at once beyond).
    """

    __slots__ = ("limit", "reader", "sets")

    def __init__(self, reader: ImageReader, limit: int = 65_536) -> None:
        self.reader = reader
        self.limit = limit
        self.sets: dict[tuple[str, ...], tuple[tuple[Image, ...], ImageCache | None]] = {}

    def known(self, refs: list[Any]) -> tuple[tuple[Image, ...], ImageCache | None] | None:
        """The images (and a cache built from them) of a list read before, else None."""
        try:
            return self.sets.get(tuple(refs))
        except TypeError:  # something unhashable in the list: bad input, read as usual
            return None

    def remember(self, refs: list[Any], images: tuple[Image, ...], cache: ImageCache) -> None:
        """``refs`` read well into ``images``, in ``cache``."""
        if len(self.sets) >= self.limit:
            self.sets.clear()
        self.sets[tuple(refs)] = (images, cache)


def _images(
    value: object, field: str, reader: ImageReader
) -> tuple[Image, ...]:
    if not isinstance(value, list):
        field_error(field, "missing or not a list of image references")
    if not 1 <= len(value) <= MAX_IMAGES_PER_CACHE:
        field_error(field, f"holds {len(value)} images; a cache holds 1 to {MAX_IMAGES_PER_CACHE}")
    return tuple(reader.image(ref, f"{field}[{i}]") for i, ref in enumerate(value))


def _build(
    cache_id: str,
    images: tuple[Image, ...],
    name: str,
    size_gib: int,
    phase: Phase,
    created: datetime | None,
    now: TimeLike | None,
    expires: datetime | None = None,
    last_matched: datetime | None = None,
    auto_created: bool = False,
    retention_days: int | None = None,
    like: ImageCache | None = None,
) -> ImageCache:
    # Every field was checked as it was read (the readers' messages name the
    # field), so the cache is built without the model checking them again: a
    # cluster's list is ten thousand of them (``_crd`` passes its arguments by
    # position: no keyword call per cache).
    if cache_id != cache_id.strip():
        field_error("", f"image cache id {cache_id!r} has surrounding white space")
    if created is None:
        created = to_datetime(now, "now") if now is not None else utcnow()
    try:
        return trusted_cache_of(cache_id, images, name, size_gib, phase, created, expires,
                                last_matched, auto_created, None, None, retention_days, like)
    except FastmatchError as exc:  # a layer listed with two sizes
        field_error("", str(exc))


def has_cache_id(obj: Mapping[str, Any]) -> bool:
    """Whether an ``ImageCache`` object has been given its ECI id (``status.imageCacheId``)."""
    status = obj.get("status")
    return isinstance(status, Mapping) and bool(status.get("imageCacheId"))


def _crd(
    obj: Mapping[str, Any],
    reader: ImageReader,
    now: TimeLike | None,
    sets: ImageSets | None = None,
) -> ImageCache:
    # A file holds ten thousand of these: each field takes its fast path when it is
    # of the plain type JSON and YAML give, and its helper (which words what is
    # wrong) otherwise; the fields are checked in the same order either way, so the
    # first bad one is the one named.
    meta = obj.get("metadata")
    if type(meta) is not dict:
        meta = _mapping(meta, "metadata")
    spec = obj.get("spec")
    if type(spec) is not dict:
        spec = _mapping(spec, "spec")
    status = obj.get("status")
    if type(status) is not dict:
        status = _mapping(status, "status")
    name = meta.get("name")
    if type(name) is not str or not name:
        name = _text(name, "metadata.name", required=True)
        assert name is not None
    cache_id = status.get("imageCacheId")
    if type(cache_id) is not str or not cache_id:
        cache_id = _text(cache_id, "status.imageCacheId") or name
    refs = spec.get("images")
    known = sets.known(refs) if sets is not None and type(refs) is list else None
    if known is not None:
        images, like = known
    else:
        images, like = _images(refs, "spec.images", reader), None
    labels = meta.get("labels")
    if labels is not None and type(labels) is not dict:
        labels = _mapping(labels, "metadata.labels")
    created = _time(meta.get("creationTimestamp"), "metadata.creationTimestamp")
    size = spec.get("imageCacheSize")
    if type(size) is not int or not MIN_SIZE_GIB <= size <= MAX_SIZE_GIB:
        size = _int(size, "spec.imageCacheSize", MIN_SIZE_GIB, MAX_SIZE_GIB,
                    "an integer (GiB)")
    retention = spec.get("retentionDays")
    if retention is not None and (type(retention) is not int or not 1 <= retention <= 10**6):
        retention = _int(retention, "spec.retentionDays", 1, 10**6, "an integer (days)")
    # A new object has no status: ECI has not started on it (Preparing).
    phase_name = status.get("phase")
    phase = _PHASES.get(phase_name) if type(phase_name) is str else None
    if phase is None:
        phase = _phase(phase_name, "status.phase", Phase.PREPARING)
    expires = status.get("expireDateTime")
    if expires is not None:
        expires = _time(expires, "status.expireDateTime")
    auto = name.startswith(PROPOSAL_PREFIX) or (
        labels is not None and labels.get(MANAGED_BY[0]) == MANAGED_BY[1])
    cache = _build(cache_id, images, name, size if size is not None else 20, phase, created,
                   now, expires, None, auto, retention, like)
    if sets is not None and known is None:
        assert type(refs) is list
        sets.remember(refs, images, cache)
    return cache


def _describe(item: Mapping[str, Any], reader: ImageReader, now: TimeLike | None) -> ImageCache:
    cache_id = _text(item.get("ImageCacheId"), "ImageCacheId", required=True)
    assert cache_id is not None
    name = _text(item.get("ImageCacheName"), "ImageCacheName") or ""
    images = _images(item.get("Images"), "Images", reader)
    size = _int(item.get("ImageCacheSize"), "ImageCacheSize", MIN_SIZE_GIB, MAX_SIZE_GIB,
                "an integer (GiB)")
    created = _time(item.get("CreationTime"), "CreationTime")
    strategy = _text(item.get("EliminationStrategy"), "EliminationStrategy")
    return _build(
        cache_id,
        images,
        name=name,
        size_gib=size if size is not None else 20,
        phase=_phase(item.get("Status"), "Status", Phase.READY),
        created=created,
        now=now,
        expires=_time(item.get("ExpireDateTime"), "ExpireDateTime"),
        last_matched=_time(item.get("LastMatchedTime"), "LastMatchedTime"),
        auto_created=name.startswith(PROPOSAL_PREFIX) or strategy == "LRU",
    )


def _where(obj: Mapping[str, Any], where: str | None) -> str:
    return where if where is not None else label(obj)


def cache_from_object(
    obj: Mapping[str, Any],
    *,
    layers: LayerSource | None = None,
    now: TimeLike | None = None,
    where: str | None = None,
    reader: ImageReader | None = None,
    sets: ImageSets | None = None,
) -> ImageCache:
    """An ``ImageCache`` object (a watch event's, a file's) as an :class:`ImageCache`.

    ``layers`` gives its images' layers (else they are known by reference);
    ``now`` stands in for a missing ``metadata.creationTimestamp``; ``sets`` (with
    its reader, which then stands for ``reader`` and ``layers``) remembers the image
    lists read, for a reader of many objects.  Bad input
    raises :class:`~fastmatch.errors.InputFileError` naming ``where`` (default:
    the object's kind and name) and the field.
    """
    if not isinstance(obj, Mapping):
        raise InputFileError(f"{where or 'ImageCache'}: expected an object, got "
                             f"{type(obj).__name__}")
    try:
        if sets is not None:
            return _crd(obj, sets.reader, now, sets)
        return _crd(obj, reader or ImageReader(layers), now)
    except FieldError as exc:
        raise InputFileError(f"{_where(obj, where)}: {exc}") from None


def cache_from_describe(
    item: Mapping[str, Any],
    *,
    layers: LayerSource | None = None,
    now: TimeLike | None = None,
    where: str = "ImageCaches[0]",
    reader: ImageReader | None = None,
) -> ImageCache:
    """One entry of a ``DescribeImageCaches`` answer's ``ImageCaches`` as an
    :class:`ImageCache` (see :func:`cache_from_object`)."""
    if not isinstance(item, Mapping):
        raise InputFileError(f"{where}: expected an object, got {type(item).__name__}")
    try:
        return _describe(item, reader or ImageReader(layers), now)
    except FieldError as exc:
        raise InputFileError(f"{where}: {exc}") from None


def _is_describe(obj: Mapping[str, Any]) -> bool:
    return "kind" not in obj and "ImageCaches" in obj


def caches_from(
    found: Iterable[Located], reader: ImageReader, now: TimeLike | None = None
) -> list[tuple[ImageCache, Located | str]]:
    """The caches among objects read from files (other kinds skipped), each with where
    it was read (the object, whose ``where`` names it, or that place)."""
    caches: list[tuple[ImageCache, Located | str]] = []
    # Caches listing the same references share one images tuple and what a cache
    # derives from it (its layers, its bytes, the index's encoding of its images).
    sets = ImageSets(reader)
    # Runs of plain ImageCache objects (nearly all of a cluster's) are read in C; each
    # object it hands back is read here, field by field, and its error worded.
    items = found if type(found) is list else list(found)
    plain = PlainCaches(sets, _PHASES, Phase.PREPARING, MANAGED_BY, PROPOSAL_PREFIX)
    at = plain.read(items, 0, caches)
    while at < len(items):
        located = items[at]
        obj = located.obj
        assert type(obj) is dict or isinstance(obj, Mapping)
        try:
            if obj.get("kind") == KIND:
                caches.append((_crd(obj, reader, now, sets), located))
            elif _is_describe(obj):
                entries = obj.get("ImageCaches")
                if not isinstance(entries, list):
                    field_error("ImageCaches", "expected a list")
                for i, item in enumerate(entries):
                    if not isinstance(item, Mapping):
                        field_error(f"ImageCaches[{i}]", "expected an object")
                    try:
                        cache = _describe(item, reader, now)
                        caches.append((cache, f"{located.where}: ImageCaches[{i}]"))
                    except FieldError as exc:
                        raise FieldError(f"ImageCaches[{i}]" + (f".{exc.field}" if exc.field
                                                                 else ""), exc.problem) from None
        except FieldError as exc:
            raise located.error(exc) from None
        at = plain.read(items, at + 1, caches)
    return caches


def read_caches(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    catalog: LayerSource | None = None,
    now: TimeLike | None = None,
) -> list[ImageCache]:
    """Every cache in ``paths`` (SPEC §6, §8): ``ImageCache`` objects (YAML, JSON, a
    ``List``) and ``DescribeImageCaches`` answers; other kinds are skipped.

    ``catalog`` (any layer source) gives the images' layers; ``now`` stands in
    for a missing creation time.  Two caches with one id are bad input.  All or
    nothing: bad input raises :class:`~fastmatch.errors.InputFileError` naming
    the file, the document and the field.
    """
    with bulk():
        caches = caches_from(read_objects(paths), ImageReader(catalog), now)
    return unique_caches(caches)


def unique_caches(found: Iterable[tuple[ImageCache, Located | str]]) -> list[ImageCache]:
    """The caches of ``found`` (each with where it was read, as :func:`caches_from` gives
    them), refusing a second cache under one id: an
    :class:`~fastmatch.errors.InputFileError` naming both places."""
    found = found if type(found) is list else list(found)
    caches = list(map(_FIRST, found))
    if len(set(map(_ID, caches))) == len(caches):  # told in C: the common case
        return caches
    seen: dict[str, Located | str] = {}
    caches = []
    for cache, place in found:
        first = seen.setdefault(cache.id, place)
        if first is not place:
            def shown(at: Located | str) -> str:
                return at if isinstance(at, str) else at.where

            raise InputFileError(
                f"{shown(place)}: image cache {cache.id} is listed already, at {shown(first)}"
            )
        caches.append(cache)
    return caches
