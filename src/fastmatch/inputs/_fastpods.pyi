"""Type stub of the compiled pods fast path (``_fastpods.pyx``)."""

from collections.abc import Callable, Iterable
from typing import Any, final

__all__ = ["PlainWorkloads"]

@final  # an extension type made final: no subclass
class PlainWorkloads:
    """The careful reader's types and helpers, for reading plain objects as it does."""

    def __init__(
        self,
        shared: type[tuple[Any, ...]],
        request: type,
        fields: type,
        policy: Callable[[tuple[str | None, ...], str | None, str | None], Any],
        replicated: frozenset[str],
        single: frozenset[str],
        max_replicas: int,
    ) -> None: ...
    def runs(
        self,
        found: Iterable[Any],
        image: Callable[[str, str, str | None], Any],
        careful: Callable[[Any], tuple[Any, int, str | None] | None],
    ) -> tuple[list[tuple[Any, int, str | None]], list[int]]:
        """The runs of the objects of ``found`` and the index one past each run's last pod."""
    def lists(
        self, runs: list[tuple[Any, int, str | None]]
    ) -> tuple[list[list[Any]], list[Any], list[int], list[str]]:
        """What ``workload_lists`` gives for these runs."""
