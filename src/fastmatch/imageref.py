"""Image references, parsed and normalized as Docker and containerd do.

The grammar is the one of Docker's ``distribution/reference`` package::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] remote-name
    domain     := host [":" port]
    remote-name:= path-component ["/" path-component]*
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*
    separator  := [._] | "__" | "-"+
    tag        := [\\w][\\w.-]{0,127}

Normalization (``ParseNormalizedNamed`` plus ``TagNameOnly``): a first
component, followed by ``/``, that holds a ``.`` or a ``:``, is
``localhost`` or has upper-case letters is a registry host, otherwise the
image lives on ``docker.io``; a one-component Docker Hub name gets
``library/``; ``index.docker.io`` is ``docker.io``; a reference without tag
or digest is ``:latest``.  A reference with a digest is identified by its
digest, so its normalized form drops the tag: ``nginx:1.25@sha256:…`` is
``docker.io/library/nginx@sha256:…``.

Validation follows Docker too: the repository path is lowercase and at most
255 characters once normalized, a tag at most 128; a digest uses an
algorithm Docker registers (sha256, sha384, sha512) with its exact number of
lowercase hex digits; a bare 64-hex-digit name is refused because it reads
as an image id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from fastmatch.errors import InvalidReferenceError

__all__ = ["DEFAULT_DOMAIN", "ImageReference", "normalize_reference", "parse_reference"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_REPO_PREFIX = "library/"
# Docker limits the repository path (without the registry host, with the
# ``library/`` of official images) to 255 characters.
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128
# The digest algorithms Docker accepts in a reference (those go-digest registers),
# with the length of their lowercase hex encoding.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_REMOTE})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)
_DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT, re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_ANCHORED_IDENTIFIER = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed, normalized image reference.

    ``domain`` is the registry host (with port), ``path`` the repository
    path inside it, ``tag`` and ``digest`` as given (``tag`` is ``latest``
    when neither was given).
    """

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The fully qualified repository, e.g. ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def normalized(self) -> str:
        """The identity of the image: ``name@digest`` when pinned, else ``name:tag``."""
        if self.digest is not None:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}"

    @property
    def familiar(self) -> str:
        """The short form Docker prints, e.g. ``nginx:latest`` or ``user/app:1``."""
        path = self.path
        if self.domain == DEFAULT_DOMAIN:
            if path.startswith(_OFFICIAL_REPO_PREFIX) and path.count("/") == 1:
                path = path[len(_OFFICIAL_REPO_PREFIX) :]
            name = path
        else:
            name = f"{self.domain}/{path}"
        if self.digest is not None:
            return f"{name}@{self.digest}"
        return f"{name}:{self.tag}"

    def __str__(self) -> str:
        return self.normalized


def _looks_like_host(first: str) -> bool:
    """Whether the first component of a name is a registry host, as Docker decides.

    A component with a ``.`` or a ``:``, ``localhost``, or one with upper-case
    letters (a repository path never has them) is a host.
    """
    return any(c in first for c in ".:") or first == "localhost" or first.lower() != first


def _split_domain(name: str) -> tuple[str, str]:
    """Split a name into registry host and repository path, as Docker does."""
    first, slash, rest = name.partition("/")
    if slash and _looks_like_host(first):
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == _LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = _OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _digest_problem(digest: str) -> str | None:
    """Say what is wrong with the digest of a reference, or ``None`` if Docker accepts it."""
    if not _DIGEST_RE.fullmatch(digest):
        return f"invalid digest {digest!r}: expected algorithm:hex, e.g. sha256:<64 hex digits>"
    algorithm, hex_part = digest.split(":", 1)
    want = _DIGEST_HEX_LENGTH.get(algorithm)
    if want is None:
        names = ", ".join(_DIGEST_HEX_LENGTH)
        return f"unsupported digest algorithm {algorithm!r} in {digest!r} (expected {names})"
    if len(hex_part) != want:
        return (
            f"invalid digest {digest!r}: {algorithm} takes {want} hex digits, not {len(hex_part)}"
        )
    if hex_part != hex_part.lower():
        return f"invalid digest {digest!r}: the hex digits must be lowercase"
    return None


def _diagnose(ref: str) -> str:
    """Say which part of a reference that does not parse is at fault."""
    if _REFERENCE_RE.fullmatch(ref.lower()):
        # Parses once lower-cased: only a repository path may not hold upper case.
        return "repository name must be lowercase"
    rest, at, digest = ref.partition("@")
    if at:
        problem = _digest_problem(digest)
        if problem is not None:
            return problem
    name, tag = rest, None
    colon = rest.rfind(":")
    if colon > rest.rfind("/") and colon > rest.rfind("]"):
        name, tag = rest[:colon], rest[colon + 1 :]
    if not name:
        return "the repository name is empty"
    if tag is not None:
        if not tag:
            return "the tag after ':' is empty"
        if len(tag) > TAG_LENGTH_MAX:
            return f"the tag is {len(tag)} characters long, more than {TAG_LENGTH_MAX}"
        if not _TAG_RE.fullmatch(tag):
            return (
                f"invalid tag {tag!r}: a tag is letters, digits, '_', '.' and '-', "
                "and does not start with '.' or '-'"
            )
    if "://" in name:
        return "it is a URL; write [registry/]repository without a scheme"
    first, slash, remainder = name.partition("/")
    if slash and _looks_like_host(first):
        if not _DOMAIN_RE.fullmatch(first):
            return f"invalid registry host {first!r}"
        components = remainder.split("/")
    else:
        if not slash and _DOMAIN_RE.fullmatch(name) and not _PATH_COMPONENT_RE.fullmatch(name):
            return f"{name!r} is a registry host with no repository after it"
        components = name.split("/")
    for component in components:
        if not component:
            return "a path component is empty ('/' at the start or end, or '//')"
        if not _PATH_COMPONENT_RE.fullmatch(component):
            return (
                f"invalid path component {component!r}: lowercase letters and digits, "
                "separated by one '.', one or two '_', or dashes"
            )
    return "it does not follow the [registry/]repository[:tag][@digest] grammar"


def parse_reference(ref: str) -> ImageReference:
    """Parse and normalize ``ref``; raise :class:`InvalidReferenceError` if it is invalid.

    >>> parse_reference("nginx:1.25").name
    'docker.io/library/nginx'
    """
    if not isinstance(ref, str):
        raise InvalidReferenceError(
            f"invalid image reference {ref!r}: must be a string, not {type(ref).__name__}"
        )
    return _parse(ref)


@lru_cache(maxsize=65536)
def _parse(ref: str) -> ImageReference:
    """:func:`parse_reference` for a string, memoized: pods repeat the same images."""

    def bad(why: str) -> InvalidReferenceError:
        return InvalidReferenceError(f"invalid image reference {ref!r}: {why}")

    if ref == "":
        raise bad("it is empty")
    if ref != ref.strip():
        raise bad("it has leading or trailing white space")
    if _ANCHORED_IDENTIFIER.fullmatch(ref):
        raise bad("cannot specify a 64-byte hexadecimal string as a repository name")
    match = _REFERENCE_RE.fullmatch(ref)
    if match is None:
        raise bad(_diagnose(ref))
    tag = match.group("tag")
    digest = match.group("digest")
    domain, path = _split_domain(match.group("name"))
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise bad(
            f"the repository path is {len(path)} characters long, more than {NAME_TOTAL_LENGTH_MAX}"
        )
    if digest is not None:
        problem = _digest_problem(digest)
        if problem is not None:
            raise bad(problem)
    if digest is None and tag is None:
        tag = "latest"
    return ImageReference(domain=domain, path=path, tag=tag, digest=digest)


def normalize_reference(ref: str) -> str:
    """Return the normalized identity of ``ref``.

    >>> normalize_reference("nginx")
    'docker.io/library/nginx:latest'
    >>> normalize_reference("user/app:1.0")
    'docker.io/user/app:1.0'
    >>> normalize_reference("localhost:5000/app")
    'localhost:5000/app:latest'
    """
    return parse_reference(ref).normalized
