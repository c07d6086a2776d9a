"""The one-line reasons of :class:`~fastmatch.MatchResult` (SPEC §3.8), and bytes for people.

Both the compiled index and the reference word their decisions through these
functions, so the two can be compared field by field.  A result keeps the
function and its arguments and words the reason only when it is read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from fastmatch.model import ImageCache, proposal_name
from fastmatch.policy import MatchPolicy

__all__ = [
    "Proposal",
    "human_bytes",
    "human_duration",
    "images",
    "reason_none",
    "reason_rejected",
    "reason_used",
]

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


def human_duration(span: timedelta) -> str:
    """A duration for a person: ``2 h``, ``90 min``, ``45 s``.

    >>> human_duration(timedelta(hours=2)), human_duration(timedelta(minutes=90))
    ('2 h', '90 min')
    """
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def images(n: int) -> str:
    """``1 image``, ``2 images``."""
    return "1 image" if n == 1 else f"{n} images"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


_tuple = tuple.__new__


class Proposal(NamedTuple):
    """What the reason says about auto-create: a proposal, a cache already being built,
    a cache that is stuck past the creation timeout, images left out of a proposal, or
    a proposal an earlier pod of the batch made."""

    create_name: str | None = None
    create_gib: int = 0
    creating: str | None = None
    stuck: str | None = None
    timeout: timedelta | None = None
    dropped: int = 0
    earlier: str | None = None
    earlier_pod: str = ""

    @classmethod
    def proposing(
        cls, name: str, size_gib: int, stuck: str | None, timeout: timedelta, dropped: int
    ) -> Proposal:
        """A proposal to create ``name`` (and perhaps a stuck cache it replaces)."""
        # tuple.__new__ rather than the keyword constructor: one is made per miss.
        return _tuple(cls, (name, size_gib, None, stuck, timeout, dropped, None, ""))

    @classmethod
    def earlier_in_batch(cls, pod_name: str) -> Proposal:
        """The proposal ``pod_name``, earlier in the batch, made for the same images."""
        return _tuple(cls, (None, 0, None, None, None, 0, proposal_name(pod_name), pod_name))

    def __str__(self) -> str:
        text = ""
        if self.earlier is not None:
            pod = f"pod {self.earlier_pod}" if self.earlier_pod else "an earlier pod"
            text += f"; {self.earlier} is proposed once for these images, with {pod}"
        if self.creating is not None:
            text += f"; cache {self.creating} for these images is already being created"
        if self.stuck is not None:
            assert self.timeout is not None
            text += (
                f"; cache {self.stuck} for these images has been building for over "
                f"{human_duration(self.timeout)}, so it no longer counts"
            )
        if self.create_name is not None:
            text += f"; proposing to create {self.create_name} ({self.create_gib} GiB)"
            if self.dropped:
                text += (
                    f" with the 20 largest of the pod's images "
                    f"({images(self.dropped)} left out: a cache holds at most 20)"
                )
        return text


def reason_used(
    cache: ImageCache,
    named: bool,
    full: int,
    n: int,
    covered: int,
    pod_bytes: int,
    proposal: Proposal | None = None,
) -> str:
    """Why a cache was used."""
    how = "named cache" if named else "matched"
    if n == 1:
        held = "the pod's image fully cached" if full else "the pod's image not fully cached"
    else:
        held = f"{full} of {n} images fully cached"
    return (
        f"{how} {cache.id}: {held}, "
        f"{human_bytes(covered)} of {human_bytes(pod_bytes)}{proposal or ''}"
    )


def reason_rejected(cache_id: str, cache: ImageCache | None, now: datetime | None = None) -> str:
    """Why a pod naming ``cache_id`` is rejected: missing, not Ready, or expired at ``now``."""
    if cache is None:
        return f"rejected: image cache {cache_id} does not exist"
    if cache.phase.value != "Ready":
        return f"rejected: image cache {cache_id} is {cache.phase.value}, not Ready"
    at = cache.expires_at
    when = f" at {_iso(at)}" if at is not None else ""
    return f"rejected: image cache {cache_id} expired{when} (ECI deletes expired caches)"


def _bar(policy: MatchPolicy, n: int) -> str:
    count = policy.match_count
    if policy.perfect_match or (count is not None and count >= n > 1):
        what = "the image" if n == 1 else f"all {n} images"
        if policy.perfect_match:
            return f"holds {what} (perfect match required)"
        return f"holds {what} (match count {count} asks for every image)"
    if n == 1:
        return "holds the image fully" if not policy.allow_partial else "shares a layer's bytes"
    if count is not None:
        return f"holds at least {count} of the {n} images fully"
    if policy.allow_partial:
        return "holds an image or shares a layer's bytes with the pod"
    return f"holds any of the {n} images fully"


def reason_none(policy: MatchPolicy, n: int, proposal: Proposal | None = None) -> str:
    """Why no cache is used."""
    if not policy.auto:
        return "no cache: automatic image cache matching is off for this pod"
    return f"no cache: no usable cache {_bar(policy, n)}{proposal or ''}"
