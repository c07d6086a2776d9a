"""The manifest cache: by digest for ever, by tag for a while, in memory and on disk.

Content addressed by digest never changes, so manifests are kept by digest
without expiry and checked against their digest when read back (a damaged
file is a miss, not a wrong answer).  What a tag points to changes, so tag
entries carry the time they were fetched; a fresh one is used as is, a stale
one is revalidated, and served with a warning when the registry cannot be
reached.  Files are written to a temporary name and renamed, so runs that
share the directory (a report and a webhook) never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fastmatch.digest import is_digest
from fastmatch.errors import ValidationError

__all__ = ["DEFAULT_TAG_TTL", "ManifestCache", "TagEntry", "default_cache_dir"]

log = logging.getLogger("fastmatch.registry")

DEFAULT_TAG_TTL = 3600.0
_FORMAT = "fastmatch-registry-cache-v1"


def default_cache_dir() -> Path:
    """``$FASTMATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastmatch/registry``, else
    ``~/.cache/fastmatch/registry``."""
    explicit = os.environ.get("FASTMATCH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "fastmatch" / "registry"


@dataclass(frozen=True, slots=True)
class TagEntry:
    """What a tag pointed to (``digest``) and when that was learnt (``fetched``, epoch s)."""

    digest: str
    fetched: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the entry was fetched."""
        return (time.time() if now is None else now) - self.fetched


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(tmp)
        raise


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        return isinstance(value, OSError)


class ManifestCache:
    """Manifests by digest and tag entries by ``name:tag``.

    ``directory`` ``None`` keeps everything in memory for the life of the
    object.  ``tag_ttl`` is how long, in seconds, a tag entry counts as
    fresh.  Thread-safe.
    """

    def __init__(self, directory: str | os.PathLike[str] | None, tag_ttl: float = DEFAULT_TAG_TTL):
        if isinstance(tag_ttl, bool) or not isinstance(tag_ttl, (int, float)) or not tag_ttl >= 0:
            raise ValidationError(f"tag_ttl must be a number of seconds >= 0, got {tag_ttl!r}")
        self.directory = Path(directory) if directory is not None else None
        self.tag_ttl = float(tag_ttl)
        self._manifests: dict[str, tuple[str, bytes]] = {}
        self._tags: dict[str, TagEntry] = {}
        self._lock = threading.Lock()
        self._disk_ok = True
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                marker = self.directory / "FORMAT"
                if not marker.exists():
                    _atomic_write(marker, (_FORMAT + "\n").encode())
            except OSError as exc:
                log.warning("registry cache %s is not writable (%s); caching in memory only",
                            self.directory, exc.strerror)
                self._disk_ok = False

    # Paths -----------------------------------------------------------------

    def _manifest_path(self, digest: str) -> Path:
        assert self.directory is not None
        algorithm, _, encoded = digest.partition(":")
        return self.directory / "manifests" / algorithm / encoded[:2] / encoded

    def _tag_path(self, name_tag: str) -> Path:
        assert self.directory is not None
        key = hashlib.sha256(name_tag.encode()).hexdigest()
        return self.directory / "tags" / key[:2] / f"{key}.json"

    # Manifests ---------------------------------------------------------------

    def get_manifest(self, digest: str) -> tuple[str, bytes] | None:
        """The media type and body stored for ``digest``, or ``None``."""
        with self._lock:
            hit = self._manifests.get(digest)
        if hit is not None or self.directory is None or not is_digest(digest):
            return hit
        try:
            raw = self._manifest_path(digest).read_bytes()
        except OSError:
            return None
        media_type, sep, body = raw.partition(b"\n")
        algorithm = digest.partition(":")[0]
        if not sep or algorithm not in ("sha256", "sha512"):
            return None
        if f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}" != digest:
            log.warning("registry cache: %s is damaged; ignoring it", digest)
            return None
        entry = (media_type.decode("utf-8", "replace"), body)
        with self._lock:
            self._manifests[digest] = entry
        return entry

    def put_manifest(self, digest: str, media_type: str, body: bytes) -> None:
        """Keep a manifest whose digest was verified by the caller."""
        with self._lock:
            self._manifests[digest] = (media_type, body)
        if self.directory is not None and self._disk_ok and is_digest(digest):
            path = self._manifest_path(digest)
            if not path.exists():
                self._write(path, media_type.encode() + b"\n" + body)

    # Tags ----------------------------------------------------------------------

    def get_tag(self, name_tag: str) -> TagEntry | None:
        """The last known digest of ``name_tag`` (``registry/repo:tag``), fresh or not."""
        with self._lock:
            hit = self._tags.get(name_tag)
        if hit is not None or self.directory is None:
            return hit
        try:
            doc = json.loads(self._tag_path(name_tag).read_bytes())
            entry = TagEntry(str(doc["digest"]), float(doc["fetched"]))
            if doc.get("ref") != name_tag or not is_digest(entry.digest):
                return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        with self._lock:
            self._tags[name_tag] = entry
        return entry

    def fresh(self, entry: TagEntry, now: float | None = None) -> bool:
        """Whether a tag entry is younger than the TTL."""
        return entry.age(now) < self.tag_ttl

    def put_tag(self, name_tag: str, digest: str, fetched: float | None = None) -> None:
        """Record that ``name_tag`` points to ``digest`` now."""
        entry = TagEntry(digest, time.time() if fetched is None else fetched)
        with self._lock:
            self._tags[name_tag] = entry
        if self.directory is not None and self._disk_ok:
            doc = {"ref": name_tag, "digest": digest, "fetched": entry.fetched}
            self._write(self._tag_path(name_tag), json.dumps(doc).encode())

    def _write(self, path: Path, data: bytes) -> None:
        try:
            _atomic_write(path, data)
        except OSError as exc:
            # A full or read-only disk slows later runs down; it must not fail this one.
            log.warning("registry cache: cannot write %s (%s)", path, exc.strerror)
            self._disk_ok = False
