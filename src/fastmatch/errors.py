"""The one error hierarchy of fastmatch.

Every error raised on bad input derives from :class:`FastmatchError`, so a
caller can catch one name.  Errors are raised at the edge where the bad input
enters, and their message names what was wrong and where.
"""

from __future__ import annotations


class FastmatchError(Exception):
    """Base of every error fastmatch raises on bad input."""


class ValidationError(FastmatchError, ValueError):
    """A model object (layer, image, cache, policy) was built from bad values."""


class InvalidDigestError(ValidationError):
    """A layer or manifest digest does not follow the OCI digest grammar."""


class InvalidReferenceError(ValidationError):
    """An image reference cannot be parsed or normalized."""


class InvalidAnnotationError(ValidationError):
    """A pod annotation has a value fastmatch cannot accept."""


class InputFileError(FastmatchError, ValueError):
    """A file (caches, pods, catalog, profile) holds bad input."""


class OutputFileError(FastmatchError, OSError):
    """A file fastmatch was asked to write cannot be written there."""
