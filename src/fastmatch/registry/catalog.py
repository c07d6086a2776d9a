"""The image catalog (SPEC §6): JSON Lines, one image a line.

    {"ref": "docker.io/library/nginx:1.25", "digest": "sha256:…",
     "layers": [{"digest": "sha256:…", "size": 123}]}

``fastmatch resolve`` writes it; every command that needs layers reads it
(``--catalog FILE``) so that no registry is needed.  Reading is all or
nothing: the first bad line raises :class:`~fastmatch.errors.InputFileError`
naming the file, the line, the field and the image
(``catalog.jsonl: line 3: layers[1].size: ...``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from fastmatch.digest import is_digest
from fastmatch.errors import FastmatchError, InputFileError, OutputFileError
from fastmatch.imageref import parse_reference
from fastmatch.model import MAX_LAYER_SIZE, Image, Layer

__all__ = ["Catalog", "catalog_line", "check_output_path", "read_catalog", "write_catalog"]


def catalog_line(image: Image) -> str:
    """One catalog line for ``image`` (no newline), keys in the SPEC's order."""
    doc: dict[str, Any] = {"ref": image.ref}
    if image.digest is not None:
        doc["digest"] = image.digest
    doc["layers"] = [{"digest": layer.digest, "size": layer.size} for layer in image.layers]
    return json.dumps(doc, separators=(",", ":"))


def check_output_path(dest: str | os.PathLike[str]) -> None:
    """Raise :class:`~fastmatch.errors.OutputFileError` unless a catalog can be written at
    ``dest``: not a directory, in an existing folder where a file can be created."""
    target = os.fspath(dest)
    if os.path.isdir(target):
        raise OutputFileError(f"{target}: is a directory; give the catalog a file name")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise OutputFileError(f"{target}: cannot write the catalog: folder {folder} {what}")
    if os.path.exists(target) and not os.path.isfile(target):
        if not os.access(target, os.W_OK):
            raise OutputFileError(f"{target}: cannot write the catalog: not writable")
        return  # a device or a pipe (/dev/stdout): written in place
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=folder)
    except OSError as exc:
        why = exc.strerror or exc
        raise OutputFileError(f"{target}: cannot write the catalog in {folder}: {why}") from None
    os.close(fd)
    os.unlink(probe)


def write_catalog(images: Iterable[Image], dest: str | os.PathLike[str] | IO[str]) -> int:
    """Write ``images`` as a catalog to a path (atomically) or an open text stream;
    return how many lines were written.  A path that cannot be written raises
    :class:`~fastmatch.errors.OutputFileError`."""
    lines = [catalog_line(image) + "\n" for image in images]
    if isinstance(dest, (str, os.PathLike)):
        check_output_path(dest)
        path = Path(dest)
        try:
            if path.exists() and not path.is_file():  # a device or a pipe: no rename
                with open(path, "w", encoding="utf-8") as handle:
                    handle.writelines(lines)
                return len(lines)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            try:
                tmp.write_text("".join(lines), encoding="utf-8")
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError as exc:
            why = exc.strerror or exc
            raise OutputFileError(f"{path}: cannot write the catalog: {why}") from None
    else:
        dest.writelines(lines)
        dest.flush()
    return len(lines)


def _field_error(where: str, field: str, problem: str, ref: str | None = None) -> InputFileError:
    about = f" (image {ref})" if ref is not None else ""
    return InputFileError(f"{where}: {field}: {problem}{about}")


def _parse_line(doc: object, where: str) -> Image:
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
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _field_error(where, "layers", "missing or not a list", ref)
    built: list[Layer] = []
    for i, layer in enumerate(layers):
        name = f"layers[{i}]"
        if not isinstance(layer, Mapping):
            raise _field_error(where, name, "expected an object with 'digest' and 'size'", ref)
        layer_digest = layer.get("digest")
        if not (isinstance(layer_digest, str) and is_digest(layer_digest)):
            raise _field_error(where, f"{name}.digest", f"invalid digest {layer_digest!r}", ref)
        size = layer.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_LAYER_SIZE:
            raise _field_error(where, f"{name}.size",
                               f"expected an integer from 0 to 2**50 (bytes), got {size!r}", ref)
        try:
            built.append(Layer(layer_digest, size))
        except FastmatchError as exc:
            raise _field_error(where, name, str(exc), ref) from None
    try:
        return Image(ref, built, digest=digest)
    except FastmatchError as exc:
        raise InputFileError(f"{where}: {exc}") from None


def _read_lines(lines: Iterable[str], name: str) -> Catalog:
    images: list[Image] = []
    first_line: dict[str, tuple[int, Image]] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        where = f"{name}: line {number}"
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) \
                else "nested too deeply"
            raise InputFileError(f"{where}: not valid JSON: {why}") from None
        except ValueError as exc:  # integers of too many digits
            raise InputFileError(f"{where}: not valid JSON: {exc}") from None
        image = _parse_line(doc, where)
        seen = first_line.get(image.ref)
        if seen is not None:
            if seen[1] != image:
                raise InputFileError(
                    f"{where}: image {image.ref} already listed on line {seen[0]} with "
                    "other content"
                )
            continue
        first_line[image.ref] = (number, image)
        images.append(image)
    return Catalog(images)


def read_catalog(source: str | os.PathLike[str] | IO[str]) -> Catalog:
    """Read a catalog from a path (``-`` is standard input) or an open text stream.

    Blank lines are skipped; an image listed twice with the same content is
    kept once.  Raise :class:`~fastmatch.errors.InputFileError` on the first
    bad line; nothing is returned half-loaded.
    """
    if isinstance(source, (str, os.PathLike)):
        if str(source) == "-":
            return _read_lines(sys.stdin, "<stdin>")
        name = str(source)
        try:
            with open(source, encoding="utf-8") as handle:
                return _read_lines(handle, name)
        except OSError as exc:
            raise InputFileError(f"{name}: cannot read catalog: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{name}: not UTF-8 text ({exc.reason})") from None
    name = getattr(source, "name", "<stream>")
    return _read_lines(source, str(name))


class Catalog:
    """Images with known layers, looked up by reference.

    A reference by digest also finds an image catalogued by tag whose
    manifest digest it is (``nginx@sha256:X`` finds ``nginx:1.25`` when its
    digest is ``X``).
    """

    def __init__(self, images: Iterable[Image] = ()) -> None:
        self._by_ref: dict[str, Image] = {}
        self._by_digest: dict[tuple[str, str], Image] = {}
        for image in images:
            self.add(image)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Catalog:
        """Read a catalog file; see :func:`read_catalog`."""
        return read_catalog(path)

    def add(self, image: Image) -> None:
        """Add (or replace) an image."""
        self._by_ref[image.ref] = image
        if image.digest is not None:
            name = parse_reference(image.ref).name
            self._by_digest.setdefault((name, image.digest), image)

    def get(self, ref: str) -> Image | None:
        """The catalogued image for ``ref`` (any spelling), or ``None``."""
        parsed = parse_reference(ref)
        hit = self._by_ref.get(parsed.normalized)
        if hit is not None or parsed.digest is None:
            return hit
        other = self._by_digest.get((parsed.name, parsed.digest))
        if other is None:
            return None
        return Image(parsed.normalized, other.layers, digest=parsed.digest)

    def image(self, ref: str) -> Image:
        """The catalogued image for ``ref``, else an image whose layers are unknown."""
        hit = self.get(ref)
        return hit if hit is not None else Image(ref)

    def images(self, refs: Iterable[str]) -> list[Image]:
        """:meth:`image` for each reference."""
        return [self.image(ref) for ref in refs]

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, str):
            return False
        try:
            return self.get(ref) is not None
        except FastmatchError:
            return False

    def __len__(self) -> int:
        return len(self._by_ref)

    def __iter__(self) -> Iterator[Image]:
        return iter(self._by_ref.values())

    def __repr__(self) -> str:
        return f"Catalog({len(self)} images)"
