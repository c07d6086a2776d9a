"""Where an image's layers come from: the :class:`LayerSource` protocol.

A catalog (:class:`~fastmatch.inputs.catalog.Catalog`) and the registry
resolver (:class:`fastmatch.registry.Resolver`) both are one, so an adapter
that needs layers takes a layer source from whoever runs it, and imports
neither.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastmatch.model import Image

__all__ = ["LayerSource"]


@runtime_checkable
class LayerSource(Protocol):
    """Anything that turns an image reference into the image with its layers."""

    def get(self, ref: str, *, platform: str | None = None) -> Image | None:
        """The image ``ref`` names, with its layers, for ``platform`` (``os/arch``) when
        given; ``None`` when the source does not know it.  A source that cannot tell now
        (a registry out of reach) raises a :class:`~fastmatch.errors.FastmatchError`;
        the caller keeps the image by reference, and may ask again later."""
        ...
