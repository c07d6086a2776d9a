"""fastmatch: fast, explainable image-cache matching for serverless pods.

fastmatch chooses an image cache (a snapshot of container image layers, as
Alibaba Cloud ECI's ``ImageCache``) for a pod about to start: by image match,
then closest size, then newest; a named cache wins; perfect-match and
match-count annotations; a cache proposed for creation on a miss.
"""

from typing import TYPE_CHECKING

from fastmatch.errors import (
    FastmatchError,
    InputFileError,
    InvalidAnnotationError,
    InvalidDigestError,
    InvalidReferenceError,
    OutputFileError,
    ValidationError,
)
from fastmatch.imageref import normalize_reference, parse_reference
from fastmatch.index import CacheIndex, UnknownCacheError
from fastmatch.model import CreateProposal, Image, ImageCache, Layer, Phase
from fastmatch.policy import MatchPolicy
from fastmatch.result import MatchResult

if TYPE_CHECKING:  # for type checkers only: at run time __getattr__ below loads it
    from fastmatch.registry.errors import RegistryError

# The one place the version is written: the package metadata (pyproject.toml) and
# `fastmatch --version` read it from here.
__version__ = "0.1.0"

__all__ = [
    "CacheIndex",
    "CreateProposal",
    "FastmatchError",
    "Image",
    "ImageCache",
    "InputFileError",
    "InvalidAnnotationError",
    "InvalidDigestError",
    "InvalidReferenceError",
    "Layer",
    "MatchPolicy",
    "MatchResult",
    "OutputFileError",
    "Phase",
    "RegistryError",
    "UnknownCacheError",
    "ValidationError",
    "__version__",
    "normalize_reference",
    "parse_reference",
]


def __getattr__(name: str) -> object:
    # The registry is an adapter: `import fastmatch` does not load it, and
    # `fastmatch.RegistryError` is looked up there on first use.
    if name == "RegistryError":
        from fastmatch.registry.errors import RegistryError

        return RegistryError
    raise AttributeError(f"module 'fastmatch' has no attribute {name!r}")
