"""The alternatives of issue 3, re-exported from :mod:`fastmatch.benchmark.alternatives`.

They live in the package so that ``fastmatch bench`` can run them on any
installation; see that module for how each one works.
:func:`check_same_decisions` checks that an alternative decides exactly as
fastmatch does on the pods it will be benchmarked on.
"""

from __future__ import annotations

from fastmatch.benchmark.alternatives import (
    ALTERNATIVES,
    Decision,
    NumpyCSR,
    ReferenceScan,
    RoaringIndex,
    SetScan,
    check_same_decisions,
    decision_of,
    roaring_available,
)

__all__ = [
    "ALTERNATIVES",
    "Decision",
    "NumpyCSR",
    "ReferenceScan",
    "RoaringIndex",
    "SetScan",
    "check_same_decisions",
    "decision_of",
    "roaring_available",
]
