"""Type stub of the compiled fast path of the caches' encoding (``_columns.pyx``)."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fastmatch.model import Image, ImageCache

__all__ = ["cache_columns"]

def cache_columns(
    caches: list[ImageCache],  # list
    image_parts: Callable[  # object: called for an images tuple that is not plain
        [tuple[Image, ...]], tuple[tuple[str, ...], tuple[Mapping[str, int], ...]]
    ],
    micros: Callable[[datetime], int],  # object: called for a creation time not in UTC
    expires_micros: Callable[[ImageCache], int],  # object: called for an expiry not plain
) -> tuple[list[Any], ...] | None:
    """The columns of :func:`fastmatch.encoding.cache_columns`, or ``None`` when a cache is
    not an ``ImageCache`` itself (or has a field unset).  ``image_parts(images)``,
    ``micros(created)`` and ``expires_micros(cache)`` encode what is not plain."""
