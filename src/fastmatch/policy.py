"""How a pod asks for a cache: :class:`MatchPolicy` and its annotations (SPEC §2)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fastmatch.errors import InvalidAnnotationError, ValidationError
from fastmatch.platforms import normalize_arch, normalize_os

__all__ = ["ANNOTATIONS", "MatchPolicy"]

AUTO_IMC = "k8s.aliyun.com/eci-auto-imc"
AUTO_IMC_LEGACY = "k8s.aliyun.com/eci-image-cache"
PERFECT_MATCH = "k8s.aliyun.com/imc-perfect-match"
MATCH_COUNT = "k8s.aliyun.com/imc-match-count-request"
IMC_ID = "k8s.aliyun.com/eci-imc-id"
IMC_ID_LEGACY = "k8s.aliyun.com/eci-image-snapshot-id"
EXTRA_STORAGE = "k8s.aliyun.com/eci-extra-ephemeral-storage"

ANNOTATIONS = (
    AUTO_IMC,
    AUTO_IMC_LEGACY,
    PERFECT_MATCH,
    MATCH_COUNT,
    IMC_ID,
    IMC_ID_LEGACY,
    EXTRA_STORAGE,
)

_QUANTITY = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?")
_UNIT = {
    None: 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def _bool(annotations: Mapping[str, str], key: str, default: bool) -> bool:
    value = annotations.get(key)
    if value is None:
        return default
    folded = value.strip().lower() if isinstance(value, str) else None
    if folded == "true":
        return True
    if folded == "false":
        return False
    raise InvalidAnnotationError(f"annotation {key}: expected true or false, got {value!r}")


def _aliased(annotations: Mapping[str, str], key: str, legacy: str) -> str | None:
    """The value of ``key``, or of its legacy alias; both set and different is an error.

    Values are compared without surrounding white space, the way they are read.
    """
    value, old = annotations.get(key), annotations.get(legacy)
    if value is not None and old is not None and value.strip() != old.strip():
        raise InvalidAnnotationError(
            f"annotations {key}={value!r} and its legacy alias {legacy}={old!r} disagree"
        )
    return value if value is not None else old


def _gib(value: str, key: str) -> int:
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidAnnotationError(
            f"annotation {key}: expected a storage quantity such as 50Gi, got {value!r}"
        )
    size = float(match.group("num")) * _UNIT[match.group("unit")]
    return math.ceil(size / 2**30)


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    """What a pod asks of its cache.

    ``auto``: match a cache automatically.  ``perfect_match``: every image of
    the pod must be fully in the cache.  ``match_count``: at least that many
    images must be (ignored under ``perfect_match``).  ``cache_id``: use this
    cache and nothing else.  ``storage_gib``: only caches that fit this
    storage limit.  ``allow_partial``: without perfect-match or a count, any
    layer overlap makes a cache eligible.  ``extra_storage_gib``: the pod's
    extra ephemeral storage, added to an auto-created cache.  ``arch`` and
    ``os``: the pod's platform, when known.
    """

    auto: bool = True
    perfect_match: bool = False
    match_count: int | None = None
    cache_id: str | None = None
    storage_gib: float | None = None
    allow_partial: bool = False
    extra_storage_gib: int = 0
    arch: str | None = None
    os: str | None = None

    def __post_init__(self) -> None:
        for name in ("auto", "perfect_match", "allow_partial"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(
                    f"MatchPolicy.{name} must be a bool, got {getattr(self, name)!r}"
                )
        count = self.match_count
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValidationError(
                f"MatchPolicy.match_count must be a positive integer, got {count!r}"
            )
        if self.cache_id is not None and (
            not isinstance(self.cache_id, str) or not self.cache_id.strip()
        ):
            raise ValidationError(
                f"MatchPolicy.cache_id must be a non-empty string, got {self.cache_id!r}"
            )
        limit = self.storage_gib
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
        ):
            raise ValidationError(
                f"MatchPolicy.storage_gib must be a positive number, got {limit!r}"
            )
        extra = self.extra_storage_gib
        if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
            raise ValidationError(
                f"MatchPolicy.extra_storage_gib must be an integer >= 0, got {extra!r}"
            )
        for name, normalize in (("arch", normalize_arch), ("os", normalize_os)):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, str) or not value.strip():
                    raise ValidationError(
                        f"MatchPolicy.{name} must be a non-empty string, got {value!r}"
                    )
                object.__setattr__(self, name, normalize(value, f"MatchPolicy.{name}"))

    @classmethod
    def from_annotations(
        cls,
        annotations: Mapping[str, str] | None,
        *,
        storage_gib: float | None = None,
        allow_partial: bool = False,
        arch: str | None = None,
        os: str | None = None,
    ) -> MatchPolicy:
        """Read a pod's ECI annotations (SPEC §2), legacy aliases included.

        Unknown annotations are ignored; a known one with a bad value raises
        :class:`~fastmatch.errors.InvalidAnnotationError` naming it.

        >>> MatchPolicy.from_annotations({"k8s.aliyun.com/imc-perfect-match": "True"})
        MatchPolicy(auto=True, perfect_match=True, match_count=None, cache_id=None, \
storage_gib=None, allow_partial=False, extra_storage_gib=0, arch=None, os=None)
        """
        annotations = annotations or {}
        if not isinstance(annotations, Mapping):
            raise InvalidAnnotationError(
                f"annotations must be a mapping of strings, got {type(annotations).__name__}"
            )
        for key in ANNOTATIONS:
            value = annotations.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidAnnotationError(f"annotation {key}: values are strings, got {value!r}")
        # Each spelling is read on its own, so that an error names the annotation
        # the user wrote and "true" agrees with "True".
        auto = _bool(annotations, AUTO_IMC, True)
        if annotations.get(AUTO_IMC_LEGACY) is not None:
            legacy_auto = _bool(annotations, AUTO_IMC_LEGACY, True)
            if annotations.get(AUTO_IMC) is None:
                auto = legacy_auto
            elif legacy_auto != auto:
                raise InvalidAnnotationError(
                    f"annotations {AUTO_IMC}={annotations[AUTO_IMC]!r} and its legacy alias "
                    f"{AUTO_IMC_LEGACY}={annotations[AUTO_IMC_LEGACY]!r} disagree"
                )
        perfect = _bool(annotations, PERFECT_MATCH, False)
        count: int | None = None
        raw_count = annotations.get(MATCH_COUNT)
        if raw_count is not None:
            text = raw_count.strip()
            if not text.isdigit() or not text.isascii() or int(text) < 1:
                raise InvalidAnnotationError(
                    f"annotation {MATCH_COUNT}: expected a positive integer, got {raw_count!r}"
                )
            count = int(text)
        cache_id = _aliased(annotations, IMC_ID, IMC_ID_LEGACY)
        if cache_id is not None and not cache_id.strip():
            key = IMC_ID if annotations.get(IMC_ID) is not None else IMC_ID_LEGACY
            raise InvalidAnnotationError(f"annotation {key}: the cache id is empty")
        extra = annotations.get(EXTRA_STORAGE)
        return cls(
            auto=auto,
            perfect_match=perfect,
            match_count=count,
            cache_id=cache_id.strip() if cache_id is not None else None,
            storage_gib=storage_gib,
            allow_partial=allow_partial,
            extra_storage_gib=_gib(extra, EXTRA_STORAGE) if extra is not None else 0,
            arch=arch,
            os=os,
        )

    def annotations(self) -> dict[str, str]:
        """The pod annotations (SPEC §2) that ask for this policy: the inverse of
        :meth:`from_annotations` for what annotations can say (``storage_gib``,
        ``allow_partial``, ``arch`` and ``os`` come from elsewhere).  Defaults are left
        out, so the default policy gives ``{}``.

        >>> MatchPolicy(match_count=2).annotations()
        {'k8s.aliyun.com/imc-match-count-request': '2'}
        """
        out: dict[str, str] = {}
        if not self.auto:
            out[AUTO_IMC] = "false"
        if self.perfect_match:
            out[PERFECT_MATCH] = "true"
        if self.match_count is not None:
            out[MATCH_COUNT] = str(self.match_count)
        if self.cache_id is not None:
            out[IMC_ID] = self.cache_id
        if self.extra_storage_gib:
            out[EXTRA_STORAGE] = f"{self.extra_storage_gib}Gi"
        return out

    def min_full(self, images: int) -> int:
        """How many of ``images`` must be fully in a cache for it to be eligible.

        0 means any real bytes in common will do (``allow_partial`` with no other
        bar).  A count above ``images`` asks for all of them (SPEC §3.5).
        """
        if self.perfect_match:
            return images
        if self.match_count is not None:
            return self.match_count if self.match_count < images else images
        return 0 if self.allow_partial else 1
