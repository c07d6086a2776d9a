"""What the index hands its compiled core: caches and pods as plain keys and numbers.

The core knows layers only as string *keys*: a layer's digest, or the
pseudo-layer key of an image known by reference (SPEC §1), in a namespace no
digest can enter.  A cache's row holds its images' layers and the pseudo-layer
keys of every identity (reference and digest) of every image it lists, so that
a pod image known only by reference finds a cache that holds the same image
with its layers.  (The other direction, a pod image with layers against a cache
that lists it by reference, is the index's by-reference path.)

This module is the one owner of that encoding; only the index and its batch
pipeline use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from fastmatch._columns import cache_columns as _c_columns
from fastmatch.errors import ValidationError
from fastmatch.model import Image, ImageCache, ImageLike, Phase, distinct_images
from fastmatch.timeutil import EPOCH, to_micros

__all__ = ["NEVER", "CacheRow", "cache_columns", "cache_row", "pod_images", "pod_keys"]

NEVER = 2**63 - 1  # an expiry that never comes, in epoch microseconds


class CacheRow(NamedTuple):
    """A cache as the core takes it."""

    keys: tuple[str, ...]  # pseudo-layer keys of its images' identities
    images: tuple[Mapping[str, int], ...]  # each image's {key: size}, as a pod's copy encodes
    bytes: int
    created: int  # epoch microseconds
    expires: int  # epoch microseconds, NEVER when it never expires
    size_gib: int
    arch: str | None
    os: str | None


# The images' half of recent rows, by the identity of the caches' ``images`` tuple (kept
# in the value, so that the id cannot be reused while it is here): the cluster sync's
# reader hands caches listing one image set the very same tuple, and a watch brings many.
_IMAGE_PARTS: dict[int, tuple[tuple[Image, ...], tuple[str, ...], tuple[Mapping[str, int], ...]]]
_IMAGE_PARTS = {}
_IMAGE_PARTS_MAX = 4096  # image sets remembered; forgotten all at once beyond


ImageParts = tuple[tuple[str, ...], tuple[Mapping[str, int], ...]]


def _image_parts(images: tuple[Image, ...]) -> ImageParts:
    if len(images) == 1:  # most caches
        return images[0].pseudo_keys, (images[0].layer_sizes(),)
    return (tuple(key for image in images for key in image.pseudo_keys),
            tuple(image.layer_sizes() for image in images))


def cache_row(cache: ImageCache) -> CacheRow:
    """The core's view of ``cache``."""
    expires = cache.expires_at
    images = cache.images
    found = _IMAGE_PARTS.get(id(images))
    if found is None or found[0] is not images:
        found = (images, *_image_parts(images))
        if len(_IMAGE_PARTS) >= _IMAGE_PARTS_MAX:
            _IMAGE_PARTS.clear()
        _IMAGE_PARTS[id(images)] = found
    return CacheRow(
        found[1],
        found[2],
        cache.bytes,
        to_micros(cache.created),
        NEVER if expires is None else to_micros(expires),
        cache.size_gib,
        cache.arch,
        cache.os,
    )


_MICROSECOND = timedelta(microseconds=1)


def cache_columns(caches: Sequence[ImageCache]) -> tuple[list[Any], ...]:
    """The core's view of many caches as its bulk build takes it: :func:`cache_row` of
    each, as columns (keys, images, bytes, created, expires, size_gib, arch, os).

    Caches sharing one images tuple (as the readers hand out for one list of
    references) share its encoding.  Read in C (``fastmatch._columns``) when
    every cache is an ``ImageCache`` itself; the fields it does not take as plain
    are encoded by the functions here.
    """
    if type(caches) is list:
        fast = _c_columns(caches, _image_parts, to_micros, _expires_micros)
        if fast is not None:
            return fast
    return _python_columns(caches)


def _python_columns(caches: Sequence[ImageCache]) -> tuple[list[Any], ...]:
    """:func:`cache_columns` in Python: any caches, every field read through the model."""
    parts: dict[int, ImageParts] = {}  # id(images): the caches keep each tuple alive
    for cache in caches:
        listed = cache.images
        if id(listed) not in parts:
            parts[id(listed)] = _image_parts(listed)
    rows = [parts[id(cache.images)] for cache in caches]
    failed = Phase.FAILED
    # A column at a time: a comprehension per field costs less than a loop that appends.
    return (
        [row[0] for row in rows],
        [row[1] for row in rows],
        [cache.bytes for cache in caches],
        [(cache.created - EPOCH) // _MICROSECOND for cache in caches],  # to_micros, inlined
        [NEVER if cache.expires is None and cache.retention_days is None
         and not cache.auto_created and cache.phase is not failed  # expires_at, the common way
         else _expires_micros(cache) for cache in caches],
        [cache.size_gib for cache in caches],
        [cache.arch for cache in caches],
        [cache.os for cache in caches],
    )


def _expires_micros(cache: ImageCache) -> int:
    at = cache.expires_at
    return NEVER if at is None else to_micros(at)


def pod_images(images: Iterable[ImageLike], where: str) -> tuple[Image, ...]:
    """A pod's distinct images; a pod without any is bad input."""
    if type(images) is list and len(images) == 1 and type(images[0]) is Image:
        return (images[0],)  # the common pod: one container, its image resolved
    pod = distinct_images(images, where)
    if not pod:
        raise ValidationError(f"{where}: a pod needs at least one image")
    return pod


def pod_keys(pod: tuple[Image, ...]) -> list[Any]:
    """The pod's images as the core encodes them: each one's {key: size} (a read-only dict)."""
    return [image.layer_sizes() for image in pod]
