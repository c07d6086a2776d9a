"""Image references read from objects, with their layers from a layer source.

One :class:`ImageReader` serves one read: every reference it meets is parsed
and looked up once, and the same reference gives the same :class:`Image`
object each time, so that replicas and caches listing one image share it
(``match_many`` then scores replicas once).
"""

from __future__ import annotations

from fastmatch.errors import FastmatchError
from fastmatch.imageref import parse_reference
from fastmatch.inputs._fastcatalog import plain_reference_name
from fastmatch.inputs.documents import field_error
from fastmatch.inputs.source import LayerSource
from fastmatch.model import Image

__all__ = ["ImageReader"]


class ImageReader:
    """References to images: from ``layers`` when it knows them, else by reference (the
    pseudo-layer of SPEC §1)."""

    __slots__ = ("_memo", "layers", "unknown")

    def __init__(self, layers: LayerSource | None = None) -> None:
        self.layers = layers
        self._memo: dict[tuple[str, str | None], Image] = {}
        self.unknown: set[str] = set()  # references kept by reference: the source lacked them

    def image(self, ref: object, field: str, platform: str | None = None) -> Image:
        """The image ``ref`` (found at ``field``) names; raise
        :class:`~fastmatch.inputs.documents.FieldError` when it is not a valid reference."""
        if not isinstance(ref, str):
            field_error(field, f"expected an image reference (a string), got {ref!r}")
        key = (ref, platform)
        found = self._memo.get(key)
        if found is not None:
            return found
        if plain_reference_name(ref) is not None:
            normalized = ref  # its own normalized form, told in C (most of a cluster's)
        else:
            if not ref.strip():
                field_error(field, "the image reference is empty")
            try:
                # What Image(ref) would check, without building one the source may know.
                normalized = parse_reference(ref).normalized
            except FastmatchError as exc:
                field_error(field, str(exc))
        # Spellings of one reference (nginx, docker.io/library/nginx:latest) are one image.
        same = (normalized, platform)
        image = self._memo.get(same)
        if image is None:
            if self.layers is not None:
                try:
                    image = self.layers.get(normalized, platform=platform)
                except FastmatchError:
                    image = None  # the source cannot tell now: by reference, as if unknown
            if image is None:
                image = Image(ref)
                self.unknown.add(normalized)
            self._memo[same] = image
        self._memo[key] = image
        return image
