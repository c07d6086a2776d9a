"""The answer to "which cache should this pod start from": :class:`MatchResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastmatch.model import CreateProposal, ImageCache

__all__ = ["MatchResult", "Outcome", "human_bytes"]

Outcome = Literal["use", "none", "reject"]


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The decision for one pod (SPEC §3.8).

    ``outcome``: ``"use"`` a cache, ``"none"``, or ``"reject"`` the pod (a
    named cache that is missing or not Ready).  ``cache_id``: the cache used
    or named.  ``named``: the pod named its cache.  ``full``: how many of the
    pod's images are fully in the cache; ``covered``: bytes of the pod's
    layers in it; ``distance``: ``|bytes(cache) - bytes(pod)|``.  ``images``:
    how many distinct images the pod has; ``perfect``: all of them are fully
    cached.  ``create``: the cache to create, if any.  ``reason``: one line a
    person can act on.  ``cache``: the cache object (not compared).
    """

    outcome: Outcome
    cache_id: str | None
    named: bool
    full: int
    covered: int
    images: int
    perfect: bool
    create: CreateProposal | None
    reason: str
    distance: int | None = None
    cache: ImageCache | None = field(default=None, compare=False, repr=False)

    @property
    def hit(self) -> bool:
        """Whether the pod starts from a cache."""
        return self.outcome == "use"


_SCALES = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "kB"))


def human_bytes(n: int) -> str:
    """Bytes for a person: ``812 MB``, ``1.4 GB`` (decimal units, as registries show).

    >>> human_bytes(999), human_bytes(52_000_000), human_bytes(1_400_000_000)
    ('999 B', '52.0 MB', '1.4 GB')
    """
    magnitude = abs(n)
    if magnitude < 1000:
        return f"{n} B"
    for scale, unit in _SCALES:
        if magnitude >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if abs(value) >= 100 else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
