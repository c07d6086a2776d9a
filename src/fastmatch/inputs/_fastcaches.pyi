"""Type stub of the compiled ImageCache objects' fast path (``_fastcaches.pyx``)."""

from typing import Any

from typing_extensions import disjoint_base

from fastmatch.model import ImageCache, Phase

__all__ = ["PlainCaches"]

@disjoint_base  # an extension type: it has a C layout of its own
class PlainCaches:
    """Reads a run of plain ``ImageCache`` objects into caches, stepping over objects of
    other kinds, up to the first it hands back to the careful reader."""

    def __init__(
        self,
        sets: Any,
        phases: dict[str, Phase],
        preparing: Phase,
        managed_by: tuple[str, str],
        prefix: str,
    ) -> None: ...
    def read(self, found: list[Any], start: int, caches: list[tuple[ImageCache, Any]]) -> int:
        """Read ``found[start:]`` up to the first object handed back; return its index
        (``len(found)`` when all were read)."""
