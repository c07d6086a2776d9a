"""The one-line reasons of :class:`~fastmatch.MatchResult` (SPEC §3.8).

Both the compiled index and the reference implementation word their
decisions through these functions, so the two can be compared field by field.
"""

from __future__ import annotations

from fastmatch.model import CreateProposal, ImageCache
from fastmatch.policy import MatchPolicy
from fastmatch.result import human_bytes

__all__ = ["reason_none", "reason_rejected", "reason_used"]


def _proposal(create: CreateProposal | None) -> str:
    if create is None:
        return ""
    return f"; proposing to create {create.name} ({create.size_gib} GiB)"


def reason_used(
    cache: ImageCache,
    named: bool,
    full: int,
    images: int,
    covered: int,
    pod_bytes: int,
    create: CreateProposal | None = None,
) -> str:
    """Why a cache was used."""
    how = "named cache" if named else "matched"
    return (
        f"{how} {cache.id}: {full} of {images} images fully cached, "
        f"{human_bytes(covered)} of {human_bytes(pod_bytes)}{_proposal(create)}"
    )


def reason_rejected(cache_id: str, cache: ImageCache | None) -> str:
    """Why a pod naming ``cache_id`` is rejected."""
    if cache is None:
        return f"rejected: image cache {cache_id} does not exist"
    return f"rejected: image cache {cache_id} is {cache.phase.value}, not Ready"


def reason_none(
    policy: MatchPolicy,
    images: int,
    create: CreateProposal | None,
    creating: str | None = None,
) -> str:
    """Why no cache is used; ``creating`` names a cache already being built for the pod."""
    if not policy.auto:
        return "no cache: automatic image cache matching is off for this pod"
    if policy.perfect_match:
        bar = f"holds all {images} images (perfect match required)"
    elif policy.match_count is not None:
        bar = f"holds at least {policy.match_count} of {images} images fully"
    elif policy.allow_partial:
        bar = "shares a layer with the pod"
    else:
        bar = f"holds any of the {images} images fully"
    text = f"no cache: no usable cache {bar}"
    if creating is not None:
        text += f"; cache {creating} for these images is already being created"
    return text + _proposal(create)
