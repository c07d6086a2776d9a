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

if TYPE_CHECKING:  # for type checkers only: at run time __getattr__ below loads them
    from fastmatch.inputs import (
        Catalog,
        EciProfile,
        PodRequest,
        read_caches,
        read_catalog,
        read_pods,
    )
    from fastmatch.registry.errors import RegistryError

# The one place the version is written: the package metadata (pyproject.toml) and
# `fastmatch --version` read it from here.
__version__ = "0.1.0"

__all__ = [
    "CacheIndex",
    "Catalog",
    "CreateProposal",
    "EciProfile",
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
    "PodRequest",
    "RegistryError",
    "UnknownCacheError",
    "ValidationError",
    "__version__",
    "normalize_reference",
    "parse_reference",
    "read_caches",
    "read_catalog",
    "read_pods",
]


# Loaded on first use, so that `import fastmatch` stays the engine alone: the
# inputs (SPEC §8) bring YAML, and the registry is an adapter.
_LAZY = {
    "Catalog": "fastmatch.inputs",
    "EciProfile": "fastmatch.inputs",
    "PodRequest": "fastmatch.inputs",
    "read_caches": "fastmatch.inputs",
    "read_catalog": "fastmatch.inputs",
    "read_pods": "fastmatch.inputs",
    "RegistryError": "fastmatch.registry.errors",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastmatch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
