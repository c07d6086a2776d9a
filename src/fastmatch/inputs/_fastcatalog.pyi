"""Type stub of the compiled catalog fast path (``_fastcatalog.pyx``)."""

from collections.abc import Callable, Iterator

from typing_extensions import disjoint_base

from fastmatch.model import Image

__all__ = ["PlainReader", "plain_reference_name"]

def plain_reference_name(ref: str) -> str | None:
    """The repository name of ``ref`` when the fast path takes it as its own normalized
    form (``host/path:tag``), else ``None``."""

@disjoint_base  # an extension type: it has a C layout of its own
class PlainReader:
    """Reads a catalog's plain lines into its tables, up to the first that is not plain,
    and makes their images when first asked (until then ``by_ref`` holds each one's
    number here in place of the image)."""

    def __init__(
        self,
        by_ref: dict[str, dict[str | None, tuple[str | None, Image]]],
        by_digest: dict[tuple[str, str], str],
        plain_platform: Callable[[str], str | None],
    ) -> None: ...
    def read(self, items: Iterator[tuple[int, object]]) -> tuple[int, object] | None:
        """Read pairs up to the first whose document is not plain; return it, or ``None``."""
    def line(self, number: int) -> int:
        """The line (or document) number of the image of this number here."""
    def build(self, by_platform: dict[str | None, tuple[str | None, Image]]) -> None:
        """Make the images ``by_platform`` (an entry of ``by_ref``) holds by number."""
