"""The image catalog (SPEC §6): JSON Lines, one image a line, read into a :class:`Catalog`.

    {"ref": "docker.io/library/nginx:1.25", "digest": "sha256:…", "platform": "linux/amd64",
     "layers": [{"digest": "sha256:…", "size": 123}]}

(``platform`` optional.)  ``fastmatch resolve`` writes it; every command that
needs layers reads it (``--catalog FILE``) so that no registry is needed.
Reading is all or nothing: the first bad line raises
:class:`~fastmatch.errors.InputFileError` naming the file, the line, the field
and the image (``catalog.jsonl: line 3: layers[1].size: ...``).

A :class:`Catalog` is a :class:`~fastmatch.inputs.source.LayerSource`.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import IO

from fastmatch.digest import is_digest
from fastmatch.errors import FastmatchError, InputFileError, ValidationError
from fastmatch.imageref import parse_reference
from fastmatch.inputs._fastcatalog import PlainReader, plain_reference_name
from fastmatch.inputs.documents import bulk, read_stdin
from fastmatch.model import MAX_LAYER_SIZE, Image, Layer, trusted_layer
from fastmatch.platforms import normalize_platform

DEFAULT_PLATFORM = "linux/amd64"  # what Docker pulls when no platform is asked for

__all__ = [
    "DEFAULT_PLATFORM",
    "Catalog",
    "canonical_platform",
    "catalog_from_documents",
    "read_catalog",
]


def _field_error(where: str, field: str, problem: str, ref: str | None = None) -> InputFileError:
    about = f" (image {ref})" if ref is not None else ""
    return InputFileError(f"{where}: {field}: {problem}{about}")


def _parse_line(
    doc: object, where: str, known: dict[tuple[str, int], Layer] | None = None
) -> tuple[str | None, Image]:
    """The platform and image of one line; ``known`` holds the layers already checked
    (a catalog's images share their base layers: each is checked and made once)."""
    if not isinstance(doc, Mapping):
        raise InputFileError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    ref = doc.get("ref")
    if not isinstance(ref, str):
        raise _field_error(where, "ref", "missing or not a string")
    try:
        parse_reference(ref)
    except FastmatchError as exc:
        raise _field_error(where, "ref", str(exc)) from None
    digest = doc.get("digest")
    if digest is not None and not (isinstance(digest, str) and is_digest(digest)):
        raise _field_error(where, "digest", f"invalid digest {digest!r}", ref)
    raw_platform = doc.get("platform")
    try:
        if isinstance(raw_platform, str) and not raw_platform.strip():
            raise ValidationError("platform: expected os/arch[/variant], got ''")
        platform = canonical_platform(raw_platform, "platform")
    except FastmatchError as exc:
        raise InputFileError(f"{where}: {exc} (image {ref})") from None
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _field_error(where, "layers", "missing or not a list", ref)
    built: list[Layer] = []
    for i, layer in enumerate(layers):
        name = f"layers[{i}]"
        if not isinstance(layer, Mapping):
            raise _field_error(where, name, "expected an object with 'digest' and 'size'", ref)
        layer_digest = layer.get("digest")
        size = layer.get("size")
        if known is not None and type(layer_digest) is str and type(size) is int:
            seen = known.get((layer_digest, size))
            if seen is not None:
                built.append(seen)
                continue
        if not (isinstance(layer_digest, str) and is_digest(layer_digest)):
            raise _field_error(where, f"{name}.digest", f"invalid digest {layer_digest!r}", ref)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_LAYER_SIZE:
            raise _field_error(where, f"{name}.size",
                               f"expected an integer from 0 to 2**50 (bytes), got {size!r}", ref)
        # Both of Layer's checks were just made: no second regex pass per layer.
        made = trusted_layer(layer_digest, size)
        if known is not None:
            known[(layer_digest, size)] = made
        built.append(made)
    try:
        return platform, Image(ref, built, digest=digest)
    except FastmatchError as exc:
        raise InputFileError(f"{where}: {exc}") from None


def _plain_platform(raw: str) -> str | None:
    """The canonical spelling of a line's platform, or ``None`` when the line is not
    plain (a blank or bad platform: :func:`_parse_line` words the error)."""
    try:
        return canonical_platform(raw) if raw.strip() else None
    except FastmatchError:
        return None


def _parsed_lines(lines: Iterable[str], name: str) -> Iterator[tuple[int, object]]:
    """Each non-blank line's number and JSON value; raise on the first that is not JSON."""
    loads = json.loads
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            yield number, loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) \
                else "nested too deeply"
            raise InputFileError(f"{name}: line {number}: not valid JSON: {why}") from None
        except ValueError as exc:  # integers of too many digits
            raise InputFileError(f"{name}: line {number}: not valid JSON: {exc}") from None


def _read_lines(lines: Iterable[str], name: str) -> Catalog:
    with bulk():  # the catalog's objects hold no cycles: no collections while reading
        return _catalog_of(_parsed_lines(lines, name), name, "line")


def _catalog_of(docs: Iterable[tuple[int, object]], name: str, unit: str) -> Catalog:
    """The catalog of these numbered documents (lines of a file: ``unit`` ``"line"``).

    The plain lines (nearly all of a catalog) are checked in C by
    :class:`~fastmatch.inputs._fastcatalog.PlainReader`, which makes their images when
    first looked up, and hands back every other line, unread; each is read here, field
    by field, and its error worded.
    """
    catalog = Catalog()
    numbers: dict[tuple[str, str | None], int] = {}  # the lines read here
    known: dict[tuple[str, int], Layer] = {}
    reader = PlainReader(catalog._by_ref, catalog._by_digest, _plain_platform)
    catalog._reader = reader
    items = iter(docs)
    while (item := reader.read(items)) is not None:
        number, doc = item
        platform, image = _parse_line(doc, f"{name}: {unit} {number}", known)
        by_platform = catalog._by_ref.get(image.ref)
        if by_platform is not None and platform in by_platform:
            pending: Image | int = by_platform[platform][1]
            first = reader.line(pending) if isinstance(pending, int) else \
                numbers[(image.ref, platform)]
            reader.build(by_platform)
            if by_platform[platform][1] != image:
                on = f" for {platform}" if platform is not None else ""
                raise InputFileError(
                    f"{name}: {unit} {number}: image {image.ref}{on} already listed on "
                    f"{unit} {first} with other content"
                )
            continue
        numbers[(image.ref, platform)] = number
        catalog.add(image, platform=platform)
    return catalog


def catalog_from_documents(docs: Iterable[object], name: str = "catalog") -> Catalog:
    """The catalog of parsed documents, each what one line of a catalog file holds (a
    JSON object, already parsed): for a program that has them in memory.  Errors name
    ``name`` and the document, numbered from 1 (``catalog: document 3: layers[1].size:
    ...``); nothing is returned half-loaded."""
    if isinstance(docs, (str, bytes, Mapping)) or not isinstance(docs, Iterable):
        raise InputFileError(f"{name}: expected a list of catalog entries, got "
                             f"{type(docs).__name__}")
    with bulk():
        return _catalog_of(enumerate(docs, 1), name, "document")


def read_catalog(source: str | os.PathLike[str] | IO[str]) -> Catalog:
    """Read a catalog from a path (``-`` is standard input) or an open text stream.

    Blank lines are skipped; an image listed twice with the same content is
    kept once.  Raise :class:`~fastmatch.errors.InputFileError` on the first
    bad line; nothing is returned half-loaded.
    """
    if isinstance(source, (str, os.PathLike)) and str(source) == "-":
        name = "<stdin>"
        try:
            return _read_lines(io.StringIO(read_stdin(), newline=None), name)
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{name}: not UTF-8 text ({exc.reason})") from None
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        try:
            with open(source, encoding="utf-8-sig") as handle:
                return _read_lines(handle, name)
        except OSError as exc:
            raise InputFileError(f"{name}: cannot read catalog: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{name}: not UTF-8 text ({exc.reason})") from None
    name = str(getattr(source, "name", "<stream>"))
    try:
        return _read_lines(source, name)
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{name}: not UTF-8 text ({exc.reason})") from None


def canonical_platform(platform: object, where: str = "platform") -> str | None:
    """A platform as containerd normalizes and formats it, so that spellings of one
    platform are one key: ``Linux/aarch64/v8`` is ``linux/arm64``, ``linux/arm`` is
    ``linux/arm/v7``."""
    text = normalize_platform(platform, where)
    if text is None:
        return None
    parts = text.split("/")
    variant = parts[2] if len(parts) == 3 else ""
    if parts[1] == "arm64" and variant in ("8", "v8", "v8.0"):
        variant = ""
    elif parts[1] == "arm" and variant in ("", "5", "6", "7", "8"):
        variant = "v" + (variant or "7")
    return "/".join(parts[:2] + ([variant] if variant else []))


class Catalog:
    """Images with known layers, looked up by reference (and platform).

    A reference by digest also finds an image catalogued by tag whose
    manifest digest it is (``nginx@sha256:X`` finds ``nginx:1.25`` when its
    digest is ``X``).

    One reference may be catalogued for several platforms.  Asked for a
    platform, a lookup takes that platform's entry, else the entry without a
    platform, never another platform's.  Asked for none, it takes the entry
    without a platform, else ``linux/amd64`` (as Docker does), else the entry
    of any platform when they all hold the same image (one entry, say); entries
    that differ, none of them ``linux/amd64``, are ambiguous: the lookup finds
    nothing.
    """

    def __init__(self, images: Iterable[Image] = (), *, platform: str | None = None) -> None:
        # Reference to platform to entry.  A catalog read from a file holds, in place of
        # each image of a plain line, its number in ``_reader`` until first looked up:
        # every lookup goes through _found or entries(), which make it.
        self._by_ref: dict[str, dict[str | None, tuple[str | None, Image]]] = {}
        self._by_digest: dict[tuple[str, str], str] = {}
        self._reader: PlainReader | None = None
        for image in images:
            self.add(image, platform=platform)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Catalog:
        """Read a catalog file; see :func:`read_catalog`."""
        return read_catalog(path)

    def add(self, image: Image, *, platform: str | None = None) -> None:
        """Add (or replace) an image, for ``platform`` when given."""
        key = canonical_platform(platform)
        self._by_ref.setdefault(image.ref, {})[key] = (key, image)
        if image.digest is not None:
            name = parse_reference(image.ref).name
            self._by_digest.setdefault((name, image.digest), image.ref)

    def update(self, other: Catalog) -> None:
        """Add every entry of ``other``, platforms kept."""
        for platform, image in other.entries():
            self.add(image, platform=platform)

    def _found(self, ref: str) -> dict[str | None, tuple[str | None, Image]] | None:
        """The entries of a normalized reference, their images made."""
        found = self._by_ref.get(ref)
        if found is not None and self._reader is not None:
            self._reader.build(found)
        return found

    def platforms(self, ref: str) -> list[str | None]:
        """The platforms ``ref`` is catalogued for (``None``: an entry without one)."""
        parsed = parse_reference(ref)
        found = self._by_ref.get(parsed.normalized)
        if found is None and parsed.digest is not None:
            tagged = self._by_digest.get((parsed.name, parsed.digest))
            found = self._by_ref.get(tagged) if tagged is not None else None
        return [plat for plat, _ in (found or {}).values()]

    def entry(self, ref: str, *, platform: str | None = None) -> tuple[str | None, Image] | None:
        """The catalogued ``(platform, image)`` for ``ref`` (any spelling), or ``None``;
        see the class for how the platform is chosen."""
        if platform is None and plain_reference_name(ref) is not None:
            # A reference in its own normalized form (told in C), without a digest.
            found = self._found(ref)
            return _choose(found, None) if found is not None else None
        asked = canonical_platform(platform)
        parsed = parse_reference(ref)
        found = self._found(parsed.normalized)
        if found is not None:
            return _choose(found, asked)
        if parsed.digest is None:
            return None
        tagged = self._by_digest.get((parsed.name, parsed.digest))
        if tagged is None:
            return None
        by_platform = self._found(tagged)
        assert by_platform is not None  # _by_digest names only catalogued references
        chosen = _choose(by_platform, asked)
        if chosen is None or chosen[1].digest != parsed.digest:
            return None
        return chosen[0], Image(parsed.normalized, chosen[1].layers, digest=parsed.digest)

    def get(self, ref: str, *, platform: str | None = None) -> Image | None:
        """The catalogued image for ``ref`` (any spelling), or ``None``."""
        if platform is None and type(ref) is str:
            # A reference catalogued as it is spelled is in its normalized form (every
            # key is): what entry() would find, without parsing it again.
            by_platform = self._by_ref.get(ref)
            if by_platform is not None:
                if self._reader is not None:
                    self._reader.build(by_platform)
                chosen = _choose(by_platform, None)
                return chosen[1] if chosen is not None else None
        found = self.entry(ref, platform=platform)
        return found[1] if found is not None else None

    def image(self, ref: str, *, platform: str | None = None) -> Image:
        """The catalogued image for ``ref``, else an image whose layers are unknown."""
        hit = self.get(ref, platform=platform)
        return hit if hit is not None else Image(ref)

    def images(self, refs: Iterable[str], *, platform: str | None = None) -> list[Image]:
        """:meth:`image` for each reference."""
        return [self.image(ref, platform=platform) for ref in refs]

    def entries(self) -> Iterator[tuple[str | None, Image]]:
        """Every ``(platform, image)`` entry, in the order they were added."""
        for by_platform in self._by_ref.values():
            if self._reader is not None:
                self._reader.build(by_platform)
            yield from by_platform.values()

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, str):
            return False
        try:
            return self.get(ref) is not None
        except FastmatchError:
            return False

    def __len__(self) -> int:
        return sum(len(by_platform) for by_platform in self._by_ref.values())

    def __iter__(self) -> Iterator[Image]:
        return (image for _, image in self.entries())

    def __repr__(self) -> str:
        return f"Catalog({len(self)} images)"


def _choose(
    by_platform: dict[str | None, tuple[str | None, Image]], platform: str | None
) -> tuple[str | None, Image] | None:
    if platform is not None:
        return by_platform.get(platform) or by_platform.get(None)
    for key in (None, DEFAULT_PLATFORM):
        if key in by_platform:
            return by_platform[key]
    entries = list(by_platform.values())
    if all(image == entries[0][1] for _, image in entries):
        return entries[0]  # several platforms, one content: no choice to make
    return None
