"""The image catalog (SPEC §6): JSON Lines, one image a line.

    {"ref": "docker.io/library/nginx:1.25", "digest": "sha256:…", "platform": "linux/amd64",
     "layers": [{"digest": "sha256:…", "size": 123}]}

(``platform`` optional.)

``fastmatch resolve`` writes it; every command that needs layers reads it
(``--catalog FILE``) so that no registry is needed.  Reading is all or
nothing: the first bad line raises :class:`~fastmatch.errors.InputFileError`
naming the file, the line, the field and the image
(``catalog.jsonl: line 3: layers[1].size: ...``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from fastmatch.errors import (
    OutputFileError,
)
from fastmatch.inputs.catalog import DEFAULT_PLATFORM, Catalog, canonical_platform, read_catalog
from fastmatch.model import Image

# Reading lives with the other inputs (fastmatch.inputs.catalog); it is named here too.
__all__ = [
    "DEFAULT_PLATFORM",
    "Catalog",
    "catalog_line",
    "check_output_path",
    "read_catalog",
    "write_catalog",
]


def catalog_line(image: Image, *, platform: str | None = None) -> str:
    """One catalog line for ``image`` (no newline), keys in the SPEC's order;
    ``platform`` (``os/arch[/variant]``) is written when given."""
    doc: dict[str, Any] = {"ref": image.ref}
    if image.digest is not None:
        doc["digest"] = image.digest
    if platform is not None:
        doc["platform"] = canonical_platform(platform)
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


def write_catalog(
    images: Iterable[Image],
    dest: str | os.PathLike[str] | IO[str],
    *,
    platform: str | None = None,
    platforms: Sequence[str | None] | None = None,
) -> int:
    """Write ``images`` as a catalog to a path (atomically) or an open text stream;
    return how many lines were written.  ``platform`` is written on every line, or
    ``platforms[i]`` on the line of ``images[i]``.  A path that cannot be written
    raises :class:`~fastmatch.errors.OutputFileError`."""
    listed = list(images)
    if platforms is None:
        platforms = [platform] * len(listed)
    elif len(platforms) != len(listed):
        raise ValueError("write_catalog: one platform an image")
    lines = [catalog_line(image, platform=plat) + "\n" for image, plat in zip(listed, platforms)]
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


