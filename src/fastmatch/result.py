"""The answer to "which cache should this pod start from": :class:`MatchResult`."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, Literal

from fastmatch.model import CreateProposal, ImageCache

__all__ = ["MatchResult", "Outcome", "human_bytes"]

Outcome = Literal["use", "none", "reject"]

# A reason not yet worded: the function that words it, then its arguments.
LazyReason = tuple[Any, ...]


class _Fields:
    """The storage of a :class:`MatchResult`, writable: results are built as this,
    then become a ``MatchResult`` (same layout) by assigning ``__class__``.

    That is several times cheaper than the ``object.__setattr__`` per field
    that a frozen class needs in its ``__init__``.
    """

    __slots__ = (
        "_reason",  # the reason's text, or None until it is worded
        "_why",  # (function, *arguments) that word the reason, or None
        "cache",
        "cache_id",
        "covered",
        "create",
        "distance",
        "full",
        "images",
        "named",
        "outcome",
        "perfect",
    )

    outcome: Outcome
    cache_id: str | None
    named: bool
    full: int
    covered: int
    images: int
    perfect: bool
    create: CreateProposal | None
    distance: int | None
    cache: ImageCache | None
    _reason: str | None
    _why: LazyReason | None


class MatchResult(_Fields):
    """The decision for one pod (SPEC §3.8).

    ``outcome``: ``"use"`` a cache, ``"none"``, or ``"reject"`` the pod (a
    named cache that is missing or not Ready).  ``cache_id``: the cache used
    or named.  ``named``: the pod named its cache.  ``full``: how many of the
    pod's images are fully in the cache; ``covered``: bytes of the pod's
    layers in it; ``distance``: ``|bytes(cache) - bytes(pod)|``.  ``images``:
    how many distinct images the pod has; ``perfect``: all of them are fully
    cached.  ``create``: the cache to create, if any.  ``reason``: one line a
    person can act on.  ``cache``: the cache object (not compared).

    Immutable, compared and hashed by every field but ``cache``:

    >>> r = MatchResult("none", None, False, 0, 0, 1, False, None, "no cache")
    >>> r == MatchResult("none", None, False, 0, 0, 1, False, None, "no cache")
    True
    >>> r.full = 1
    Traceback (most recent call last):
    dataclasses.FrozenInstanceError: cannot assign to field 'full'
    """

    __slots__ = ()
    # The compared fields, in order (and positional patterns of ``match``).
    __match_args__ = (
        "outcome",
        "cache_id",
        "named",
        "full",
        "covered",
        "images",
        "perfect",
        "create",
        "reason",
        "distance",
    )

    def __init__(
        self,
        outcome: Outcome,
        cache_id: str | None,
        named: bool,
        full: int,
        covered: int,
        images: int,
        perfect: bool,
        create: CreateProposal | None,
        reason: str,
        distance: int | None = None,
        cache: ImageCache | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "outcome", outcome)
        put(self, "cache_id", cache_id)
        put(self, "named", named)
        put(self, "full", full)
        put(self, "covered", covered)
        put(self, "images", images)
        put(self, "perfect", perfect)
        put(self, "create", create)
        put(self, "distance", distance)
        put(self, "cache", cache)
        put(self, "_reason", reason)
        put(self, "_why", None)

    @property
    def reason(self) -> str:
        """Why: one line a person can act on (worded on first use)."""
        text = self._reason
        if text is None:
            why = self._why
            assert why is not None
            text = why[0](*why[1:])
            # Two threads may both word it: the same text, so either write will do.
            object.__setattr__(self, "_reason", text)
        return text

    @property
    def hit(self) -> bool:
        """Whether the pod starts from a cache."""
        return self.outcome == "use"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return (
            self.outcome,
            self.cache_id,
            self.named,
            self.full,
            self.covered,
            self.images,
            self.perfect,
            self.create,
            self.reason,
            self.distance,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, MatchResult)
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(self.__match_args__, self._key())
        )
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (*self._key(), self.cache))

    def __setstate__(self, state: list[Any]) -> None:
        """Read a pickle of the dataclass MatchResult was: its fields, in order."""
        MatchResult.__init__(self, *state)


@dataclass(frozen=True)
class _Shape:
    """The fields of :class:`MatchResult` as a dataclass would declare them.

    ``MatchResult`` was a frozen dataclass and still answers to
    ``dataclasses.fields``, ``asdict`` and ``replace`` through these.
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


setattr(MatchResult, "__dataclass_fields__", _Shape.__dataclass_fields__)  # noqa: B010
setattr(MatchResult, "__dataclass_params__", _Shape.__dataclass_params__)  # type: ignore[attr-defined]  # noqa: B010

_new = object.__new__


def _result(
    outcome: Outcome,
    cache_id: str | None,
    named: bool,
    full: int,
    covered: int,
    images: int,
    perfect: bool,
    create: CreateProposal | None,
    why: LazyReason,
    distance: int | None,
    cache: ImageCache | None,
) -> MatchResult:
    """A :class:`MatchResult` whose reason ``why[0](*why[1:])`` is worded when first read.

    The fast way to build one, for the index's hot path.
    """
    r = _new(_Fields)
    r.outcome = outcome
    r.cache_id = cache_id
    r.named = named
    r.full = full
    r.covered = covered
    r.images = images
    r.perfect = perfect
    r.create = create
    r.distance = distance
    r.cache = cache
    r._reason = None
    r._why = why
    r.__class__ = MatchResult
    return r  # type: ignore[return-value]


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
