"""The answer to "which cache should this pod start from": :class:`MatchResult`."""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError
from operator import attrgetter
from typing import Any, Literal

from fastmatch.model import CreateProposal, ImageCache

__all__ = ["FIELDS", "LazyProposal", "LazyReason", "MatchResult", "Outcome"]

Outcome = Literal["use", "none", "reject"]

# A reason not yet worded: the function that words it, then its arguments.
LazyReason = tuple[Any, ...]
# A proposal not yet made, the same way: most results' proposals are never read
# (a report counts them, a webhook reads one), and a miss is a batch's costly case.
LazyProposal = tuple[Any, ...]

# The compared fields of a result, in order, with their types: the one list that
# the slots, equality, hashing, repr, pickling and the dataclass helpers read.
FIELDS: tuple[tuple[str, Any], ...] = (
    ("outcome", Outcome),
    ("cache_id", "str | None"),
    ("named", bool),
    ("full", int),
    ("covered", int),
    ("images", int),
    ("perfect", bool),
    ("create", "CreateProposal | None"),
    ("reason", str),
    ("distance", "int | None"),
)
_NAMES = tuple(name for name, _ in FIELDS)
_compared = attrgetter(*_NAMES)


class _Fields:
    """The storage of a :class:`MatchResult`, writable: results are built as this,
    then become a ``MatchResult`` (same layout) by assigning ``__class__``.

    That is several times cheaper than the ``object.__setattr__`` per field
    that a frozen class needs in its ``__init__``.
    """

    __slots__ = (
        *(name for name in _NAMES if name not in ("reason", "create")),
        "cache",  # the cache object, not compared
        "_create",  # the proposal, or (function, *arguments) that make it, or None
        "_reason",  # the reason's text, or None until it is worded
        "_why",  # (function, *arguments) that word the reason, or None
    )

    outcome: Outcome
    cache_id: str | None
    named: bool
    full: int
    covered: int
    images: int
    perfect: bool
    _create: CreateProposal | LazyProposal | None
    distance: int | None
    cache: ImageCache | None
    _reason: str | None
    _why: LazyReason | None


_new = object.__new__


def _build(
    outcome: Outcome,
    cache_id: str | None,
    named: bool,
    full: int,
    covered: int,
    images: int,
    perfect: bool,
    create: CreateProposal | None,
    reason: str | None,
    why: LazyReason | None,
    distance: int | None,
    cache: ImageCache | None,
) -> MatchResult:
    r = _new(_Fields)
    r.outcome = outcome
    r.cache_id = cache_id
    r.named = named
    r.full = full
    r.covered = covered
    r.images = images
    r.perfect = perfect
    r._create = create
    r.distance = distance
    r.cache = cache
    r._reason = reason
    r._why = why
    r.__class__ = MatchResult
    return r  # type: ignore[return-value]


def _text_or_lazy(why: str | LazyReason) -> tuple[str | None, LazyReason | None]:
    return (why, None) if isinstance(why, str) else (None, why)


class MatchResult(_Fields):
    """The decision for one pod (SPEC §3.8).

    ``outcome``: ``"use"`` a cache, ``"none"``, or ``"reject"`` the pod (a
    named cache that is missing, not Ready or expired).  ``cache_id``: the
    cache used or named.  ``named``: the pod named its cache.  ``full``: how
    many of the pod's images are fully in the cache; ``covered``: bytes of the
    pod's layers in it; ``distance``: ``|bytes(cache) - bytes(pod)|``.
    ``images``: how many distinct images the pod has; ``perfect``: all of them
    are fully cached.  ``create``: the cache to create, if any.  ``reason``:
    one line a person can act on.  ``cache``: the cache object (not compared).

    Made by the named constructors :meth:`use`, :meth:`none` and
    :meth:`reject`; immutable, compared and hashed by every field but ``cache``:

    >>> r = MatchResult.none(1, "no cache")
    >>> r == MatchResult("none", None, False, 0, 0, 1, False, None, "no cache")
    True
    >>> r.full = 1
    Traceback (most recent call last):
    dataclasses.FrozenInstanceError: cannot assign to field 'full'
    """

    __slots__ = ()
    __match_args__ = _NAMES

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
        put(self, "_create", create)
        put(self, "distance", distance)
        put(self, "cache", cache)
        put(self, "_reason", reason)
        put(self, "_why", None)

    # -- the named constructors (the decision's three outcomes) ----------------

    # Each constructor fills the slots itself: this is every match's last step.

    @staticmethod
    def use(
        cache: ImageCache,
        named: bool,
        full: int,
        covered: int,
        images: int,
        distance: int,
        why: str | LazyReason,
        create: CreateProposal | LazyProposal | None = None,
    ) -> MatchResult:
        """The pod starts from ``cache``; ``why`` is the reason, or ``(function, *args)``
        that words it when it is first read (``create`` likewise, the proposal or what
        makes it)."""
        r = _new(_Fields)
        r.outcome = "use"
        r.cache_id = cache.id
        r.named = named
        r.full = full
        r.covered = covered
        r.images = images
        r.perfect = full == images
        r._create = create
        r.distance = distance
        r.cache = cache
        if isinstance(why, str):
            r._reason, r._why = why, None
        else:
            r._reason, r._why = None, why
        r.__class__ = MatchResult
        return r  # type: ignore[return-value]

    @staticmethod
    def none(
        images: int,
        why: str | LazyReason,
        create: CreateProposal | LazyProposal | None = None,
    ) -> MatchResult:
        """No cache for the pod (and perhaps a cache to create)."""
        r = _new(_Fields)
        r.outcome = "none"
        r.cache_id = None
        r.named = False
        r.full = r.covered = 0
        r.images = images
        r.perfect = False
        r._create = create
        r.distance = None
        r.cache = None
        if isinstance(why, str):
            r._reason, r._why = why, None
        else:
            r._reason, r._why = None, why
        r.__class__ = MatchResult
        return r  # type: ignore[return-value]

    @staticmethod
    def reject(cache_id: str, images: int, why: str | LazyReason) -> MatchResult:
        """The pod named ``cache_id``, which cannot serve it: ECI fails its creation."""
        reason, lazy = _text_or_lazy(why)
        return _build(
            "reject", cache_id, True, 0, 0, images, False, None, reason, lazy, None, None
        )

    # -- reading ---------------------------------------------------------------

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
    def create(self) -> CreateProposal | None:
        """The cache to create, if any (made on first use)."""
        made = self._create
        if made is None or type(made) is CreateProposal:
            return made
        assert type(made) is tuple
        proposal: CreateProposal = made[0](*made[1:])
        # Two threads may both make it: equal proposals, so either write will do.
        object.__setattr__(self, "_create", proposal)
        return proposal

    def as_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready fields, as ``fastmatch match --format json`` prints
        them (SPEC §9, without the pod's ``namespace`` and ``name``): ``outcome``,
        ``cache_id``, ``named``, ``full``, ``images``, ``covered``, ``perfect``,
        ``reason``, and ``create`` (``None`` or its ``name``, ``images`` as references
        and ``size_gib``)."""
        create = self.create
        return {
            "outcome": self.outcome,
            "cache_id": self.cache_id,
            "named": self.named,
            "full": self.full,
            "images": self.images,
            "covered": self.covered,
            "perfect": self.perfect,
            "reason": self.reason,
            "create": None
            if create is None
            else {
                "name": create.name,
                "images": [image.ref for image in create.images],
                "size_gib": create.size_gib,
            },
        }

    @property
    def hit(self) -> bool:
        """Whether the pod starts from a cache."""
        return self.outcome == "use"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        key: tuple[Any, ...] = _compared(self)
        return key

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, MatchResult)
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(_NAMES, self._key()))
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (*self._key(), self.cache))

    def __setstate__(self, state: list[Any]) -> None:
        """Read a pickle of the dataclass MatchResult was: its fields, in order."""
        MatchResult.__init__(self, *state)


# ``MatchResult`` was a frozen dataclass and still answers to
# ``dataclasses.fields``, ``asdict`` and ``replace``, through a dataclass of the
# same fields (``cache`` last, not compared).
_Shape = dataclasses.make_dataclass(
    "_Shape",
    [
        *(
            (name, kind) if name != "distance" else (name, kind, dataclasses.field(default=None))
            for name, kind in FIELDS
        ),
        ("cache", "ImageCache | None", dataclasses.field(default=None, compare=False, repr=False)),
    ],
    frozen=True,
)
for _name in ("__dataclass_fields__", "__dataclass_params__"):
    setattr(MatchResult, _name, vars(_Shape)[_name])
