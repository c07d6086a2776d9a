"""OCI content digests: ``algorithm ":" encoded``.

The grammar is the one of the OCI image specification (descriptor.md):

    digest    ::= algorithm ":" encoded
    algorithm ::= component (separator component)*
    component ::= [a-z0-9]+
    separator ::= [+._-]
    encoded   ::= [a-zA-Z0-9=_-]+

The registered algorithms are checked more strictly: ``sha256`` takes 64 and
``sha512`` 128 lowercase hex characters.
"""

from __future__ import annotations

import re

from fastmatch.errors import InvalidDigestError

__all__ = ["DIGEST_RE", "is_digest", "validate_digest"]

DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def _problem(digest: object) -> str | None:
    """Say what is wrong with ``digest``, or ``None`` when it is valid."""
    if not isinstance(digest, str):
        return f"a digest must be a string, not {type(digest).__name__}"
    if not DIGEST_RE.fullmatch(digest):
        return "expected algorithm:encoded, e.g. sha256:<64 lowercase hex>"
    algorithm, encoded = digest.split(":", 1)
    want = _HEX_LENGTH.get(algorithm)
    if want is not None:
        if len(encoded) != want:
            return f"{algorithm} takes {want} hex characters, not {len(encoded)}"
        if not _LOWER_HEX.fullmatch(encoded):
            return f"{algorithm} takes lowercase hex only"
    return None


def is_digest(digest: object) -> bool:
    """Tell whether ``digest`` is a valid OCI digest."""
    return _problem(digest) is None


def validate_digest(digest: object, where: str = "digest") -> str:
    """Return ``digest`` if it is a valid OCI digest, else raise.

    ``where`` names the place the digest came from (an image, a file and
    line) and is put in the error message.
    """
    problem = _problem(digest)
    if problem is not None:
        raise InvalidDigestError(f"{where}: invalid digest {digest!r}: {problem}")
    assert isinstance(digest, str)
    return digest
