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
component that holds a ``.`` or a ``:`` or is ``localhost`` is a registry
host, otherwise the image lives on ``docker.io``; a one-component Docker Hub
name gets ``library/``; ``index.docker.io`` is ``docker.io``; a reference
without tag or digest is ``:latest``.  A reference with a digest is
identified by its digest, so its normalized form drops the tag:
``nginx:1.25@sha256:…`` is ``docker.io/library/nginx@sha256:…``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from fastmatch.digest import is_digest
from fastmatch.errors import InvalidReferenceError

__all__ = ["DEFAULT_DOMAIN", "ImageReference", "normalize_reference", "parse_reference"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_REPO_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

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
_REMOTE_RE = re.compile(_REMOTE, re.ASCII)
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


def _split_domain(name: str) -> tuple[str, str]:
    """Split a name into registry host and repository path, as Docker does."""
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i < 0 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == _LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = _OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


@lru_cache(maxsize=65536)
def parse_reference(ref: str) -> ImageReference:
    """Parse and normalize ``ref``; raise :class:`InvalidReferenceError` if it is invalid."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(
            f"invalid image reference {ref!r}: must be a string, not {type(ref).__name__}"
        )

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
        # Say which part is at fault rather than only "does not parse".
        name_part = ref.split("@", 1)[0]
        last = name_part.rfind(":")
        if last > name_part.rfind("/"):
            name_part = name_part[:last]
        if any(c.isupper() for c in name_part):
            _, remote = _split_domain(name_part)
            if any(c.isupper() for c in remote):
                raise bad("repository name must be lowercase")
        if "@" in ref:
            digest = ref.split("@", 1)[1]
            if not re.fullmatch(_DIGEST, digest):
                raise bad(f"invalid digest {digest!r}")
        if "//" in ref or ref.startswith("/") or name_part.endswith("/"):
            raise bad("a path component is empty")
        raise bad("it does not follow the [registry/]repository[:tag][@digest] grammar")
    name = match.group("name")
    tag = match.group("tag")
    digest = match.group("digest")
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise bad(f"repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    domain, path = _split_domain(name)
    if any(c.isupper() for c in path):
        raise bad("repository name must be lowercase")
    if digest is not None and not is_digest(digest):
        raise bad(f"invalid digest {digest!r}")
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
