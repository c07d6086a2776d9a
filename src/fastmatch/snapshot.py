"""Index snapshots: a :class:`~fastmatch.CacheIndex` as NumPy arrays in one ``.npz`` file.

A webhook or a report starts from a snapshot in milliseconds: loading reads
the arrays, rebuilds the core's posting lists in C, and builds no model
object until one is asked for (a match result's cache, ``get``, iteration).

The file holds, besides a format version:

- ``keys``: every layer key (digests and pseudo-layer keys), as packed strings;
- the images, deduplicated: reference, manifest digest, layers (key ids, sizes);
- the caches: every field of :class:`~fastmatch.ImageCache`, images as image ids;
- the core of the ``Ready`` caches: per row its cache row, its sorted layer
  key ids, bytes, times, size, platform codes, and the images it lists as
  runs of key ids (the core's held images; their holders are found on load).

Format 2 added the images' runs; a format 1 file is refused with its version.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from fastmatch.errors import InputFileError, OutputFileError
from fastmatch.model import (
    MAX_LAYER_SIZE,
    Image,
    ImageCache,
    Layer,
    Phase,
    trusted_cache,
    trusted_image,
    trusted_layer,
)
from fastmatch.timeutil import EPOCH, to_micros

__all__ = ["FORMAT", "CacheTable", "Snapshot", "pack_strings", "unpack_strings"]

FORMAT = 2
_PHASES = list(Phase)
_NONE = np.iinfo(np.int64).min  # a missing time


def pack_strings(strings: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Strings as (lengths in characters, UTF-8 bytes of their concatenation)."""
    lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    data = np.frombuffer("".join(strings).encode("utf-8"), dtype=np.uint8)
    return lens, data


def unpack_strings(lens: npt.NDArray[Any], data: npt.NDArray[Any]) -> list[str]:
    """The inverse of :func:`pack_strings`."""
    text = bytes(data).decode("utf-8")
    ends = np.cumsum(lens).tolist()
    if (ends[-1] if ends else 0) != len(text):
        raise ValueError("string lengths do not add up to the text")
    starts = [0, *ends[:-1]]
    return [text[a:b] for a, b in zip(starts, ends)]


def _micros(value: datetime | None) -> int:
    return _NONE if value is None else to_micros(value)


class Snapshot:
    """The arrays of a snapshot, and the model objects built from them on demand."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]], where: str) -> None:
        self.where = where
        try:
            self._unpack(arrays)
        except InputFileError:
            raise
        except (KeyError, ValueError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise InputFileError(f"{where}: not a fastmatch index snapshot ({exc})") from None
        self._images: dict[int, Image] = {}
        self._layers: dict[tuple[int, int], Layer] = {}

    def _field(self, arrays: dict[str, npt.NDArray[Any]], name: str, kind: str) -> Any:
        if name not in arrays:
            raise InputFileError(f"{self.where}: snapshot field {name!r} is missing")
        array = arrays[name]
        if array.dtype.kind != kind or array.ndim != 1:
            raise InputFileError(
                f"{self.where}: snapshot field {name!r} has type {array.dtype}{array.shape}"
            )
        return array

    def _strings(self, arrays: dict[str, npt.NDArray[Any]], name: str) -> list[str]:
        lens = self._field(arrays, f"{name}.lens", "i")
        data = self._field(arrays, f"{name}.data", "u")
        return unpack_strings(lens, data)

    def _offsets(self, arrays: dict[str, npt.NDArray[Any]], name: str, n: int,
                 total: int) -> Any:
        off = self._field(arrays, name, "i")
        if len(off) != n + 1 or off[0] != 0 or off[-1] != total or np.any(np.diff(off) < 0):
            raise InputFileError(f"{self.where}: snapshot field {name!r} is not a valid offsets "
                                 f"array for {n} rows and {total} items")
        return off

    def _ids(self, arrays: dict[str, npt.NDArray[Any]], name: str, bound: int) -> Any:
        ids = self._field(arrays, name, "u")
        if len(ids) and int(ids.max()) >= bound:
            raise InputFileError(f"{self.where}: snapshot field {name!r} refers past its table "
                                 f"of {bound}")
        return ids

    def _unpack(self, a: dict[str, npt.NDArray[Any]]) -> None:
        version = self._field(a, "format", "i")
        if len(version) != 1 or int(version[0]) != FORMAT:
            raise InputFileError(f"{self.where}: snapshot format {version.tolist()} is not "
                                 f"{FORMAT}")
        self.keys = self._strings(a, "keys")
        # images
        self.img_ref = self._strings(a, "image.ref")
        self.img_digest = self._strings(a, "image.digest")
        n_img = len(self.img_ref)
        if len(self.img_digest) != n_img:
            raise InputFileError(f"{self.where}: snapshot image columns disagree in length")
        self.img_layer_key = self._ids(a, "image.layer_key", len(self.keys))
        self.img_layer_size = self._field(a, "image.layer_size", "i")
        self.img_off = self._offsets(a, "image.layer_off", n_img, len(self.img_layer_key))
        if len(self.img_layer_size) != len(self.img_layer_key):
            raise InputFileError(f"{self.where}: snapshot image layer columns disagree")
        self._sizes("image.layer_size", self.img_layer_size)
        # caches
        self.ids = self._strings(a, "cache.id")
        n = len(self.ids)
        self.names = self._strings(a, "cache.name")
        self.arch = self._strings(a, "cache.arch")
        self.os = self._strings(a, "cache.os")
        self.size_gib = self._field(a, "cache.size_gib", "i")
        self.phase = self._field(a, "cache.phase", "i")
        self.created = self._field(a, "cache.created", "i")
        self.expires = self._field(a, "cache.expires", "i")
        self.last_matched = self._field(a, "cache.last_matched", "i")
        self.auto_created = self._field(a, "cache.auto_created", "u")
        self.retention = self._field(a, "cache.retention_days", "i")
        self.cache_img = self._ids(a, "cache.image", n_img)
        self.cache_img_off = self._offsets(a, "cache.image_off", n, len(self.cache_img))
        columns = (self.names, self.arch, self.os, self.size_gib, self.phase, self.created,
                   self.expires, self.last_matched, self.auto_created, self.retention)
        if any(len(c) != n for c in columns):
            raise InputFileError(f"{self.where}: snapshot cache columns disagree in length")
        if len(set(self.ids)) != n:
            raise InputFileError(f"{self.where}: snapshot holds a cache id twice")
        if len(self.phase) and (self.phase.min() < 0 or self.phase.max() >= len(_PHASES)):
            raise InputFileError(f"{self.where}: snapshot field 'cache.phase' is out of range")
        # core
        self.platforms = self._strings(a, "core.platforms")
        self.core_row = self._ids(a, "core.row", max(n, 1))
        rows = len(self.core_row)
        self.core: dict[str, npt.NDArray[Any]] = {
            "lens": self._field(a, "core.lens", "u"),
            "layer_ids": self._ids(a, "core.layer_ids", len(self.keys)),
            "bytes": self._field(a, "core.bytes", "i"),
            "created": self._field(a, "core.created", "i"),
            "expires": self._field(a, "core.expires", "i"),
            "size_gib": self._field(a, "core.size_gib", "i"),
            "arch": self._field(a, "core.arch", "i"),
            "os": self._field(a, "core.os", "i"),
            "img_count": self._field(a, "core.img_count", "u"),
            "img_lens": self._field(a, "core.img_lens", "u"),
            "img_ids": self._ids(a, "core.img_ids", len(self.keys)),
        }
        runs = ("layer_ids", "img_lens", "img_ids")
        if any(len(v) != rows for k, v in self.core.items() if k not in runs):
            raise InputFileError(f"{self.where}: snapshot core columns disagree in length")
        self._sizes("core.bytes", self.core["bytes"], limit=None)
        if len(np.unique(self.core_row)) != rows:
            raise InputFileError(f"{self.where}: snapshot field 'core.row' names a cache twice")
        ready = _PHASES.index(Phase.READY)
        if rows and np.any(self.phase[self.core_row] != ready):
            raise InputFileError(
                f"{self.where}: snapshot field 'core.row' names a cache that is not Ready"
            )

    def _sizes(self, name: str, sizes: Any, limit: int | None = MAX_LAYER_SIZE) -> None:
        if len(sizes) and int(sizes.min()) < 0:
            raise InputFileError(f"{self.where}: snapshot field {name!r} holds a negative size")
        if limit is not None and len(sizes) and int(sizes.max()) > limit:
            raise InputFileError(
                f"{self.where}: snapshot field {name!r} holds a size over 2**50 bytes"
            )

    # -- objects on demand ----------------------------------------------------

    def image(self, row: int) -> Image:
        """The image of row ``row``, built once."""
        image = self._images.get(row)
        if image is None:
            a, b = int(self.img_off[row]), int(self.img_off[row + 1])
            layers = []
            for k, size in zip(self.img_layer_key[a:b].tolist(),
                               self.img_layer_size[a:b].tolist()):
                layer = self._layers.get((k, size))
                if layer is None:
                    layer = self._layers[(k, size)] = trusted_layer(self.keys[k], size)
                layers.append(layer)
            digest = self.img_digest[row] or None
            image = self._images[row] = trusted_image(self.img_ref[row], tuple(layers), digest)
        return image

    def phase_of(self, row: int) -> Phase:
        """The phase of cache row ``row``, without building the cache."""
        return _PHASES[int(self.phase[row])]

    def rows_in(self, phases: Iterable[Phase]) -> list[int]:
        """The cache rows whose phase is one of ``phases``."""
        codes = [_PHASES.index(p) for p in phases]
        return [int(r) for r in np.flatnonzero(np.isin(self.phase, codes))]

    def rows_by_reference(self) -> list[int]:
        """The cache rows listing an image whose layers are unknown."""
        unresolved = np.diff(self.img_off) == 0
        if not unresolved.any():
            return []
        per_entry = unresolved[self.cache_img]
        counts = np.diff(self.cache_img_off)
        owner = np.repeat(np.arange(len(counts)), counts)
        return [int(r) for r in np.unique(owner[per_entry])]

    def cache(self, row: int) -> ImageCache:
        """The cache of row ``row`` (built anew each call: the caller keeps it)."""
        a, b = int(self.cache_img_off[row]), int(self.cache_img_off[row + 1])
        retention = int(self.retention[row])
        return trusted_cache({
            "id": self.ids[row],
            "images": tuple(self.image(i) for i in self.cache_img[a:b].tolist()),
            "name": self.names[row],
            "size_gib": int(self.size_gib[row]),
            "phase": _PHASES[int(self.phase[row])],
            "created": _from_micros(int(self.created[row])) or EPOCH,
            "expires": _from_micros(int(self.expires[row])),
            "last_matched": _from_micros(int(self.last_matched[row])),
            "auto_created": bool(self.auto_created[row]),
            "arch": self.arch[row] or None,
            "os": self.os[row] or None,
            "retention_days": retention or None,
        })

    # -- writing ----------------------------------------------------------------

    @staticmethod
    def arrays(caches: Iterable[ImageCache], core: tuple[Any, ...]) -> dict[str, Any]:
        """The arrays of a snapshot of ``caches``, with ``core`` from ``Core.to_arrays``.

        ``core`` rows carry their cache as an object (an ``ImageCache``) or a
        cache id string; they are stored as rows of the cache table.
        """
        core_arrays, core_keys, platforms, core_objs = core
        cache_list = list(caches)
        row_of = {c.id: i for i, c in enumerate(cache_list)}
        keys = list(core_keys)
        key_id = {k: i for i, k in enumerate(keys)}
        images: dict[int, int] = {}  # id(image object) -> image row
        image_objs: list[Image] = []
        cache_img: list[int] = []
        cache_img_off = [0]
        for cache in cache_list:
            for image in cache.images:
                row = images.get(id(image))
                if row is None:
                    row = images[id(image)] = len(image_objs)
                    image_objs.append(image)
                cache_img.append(row)
            cache_img_off.append(len(cache_img))
        layer_key: list[int] = []
        layer_size: list[int] = []
        img_off = [0]
        for image in image_objs:
            for layer in image.layers:
                k = key_id.get(layer.digest)
                if k is None:
                    k = key_id[layer.digest] = len(keys)
                    keys.append(layer.digest)
                layer_key.append(k)
                layer_size.append(layer.size)
            img_off.append(len(layer_key))

        out: dict[str, Any] = {"format": np.array([FORMAT], dtype=np.int64)}

        def strings(name: str, values: Sequence[str]) -> None:
            out[f"{name}.lens"], out[f"{name}.data"] = pack_strings(values)

        strings("keys", keys)
        strings("image.ref", [i.ref for i in image_objs])
        strings("image.digest", [i.digest or "" for i in image_objs])
        out["image.layer_key"] = np.array(layer_key, dtype=np.uint32)
        out["image.layer_size"] = np.array(layer_size, dtype=np.int64)
        out["image.layer_off"] = np.array(img_off, dtype=np.int64)
        strings("cache.id", [c.id for c in cache_list])
        strings("cache.name", [c.name for c in cache_list])
        strings("cache.arch", [c.arch or "" for c in cache_list])
        strings("cache.os", [c.os or "" for c in cache_list])
        out["cache.size_gib"] = np.array([c.size_gib for c in cache_list], dtype=np.int32)
        out["cache.phase"] = np.array([_PHASES.index(c.phase) for c in cache_list],
                                      dtype=np.int8)
        out["cache.created"] = np.array([_micros(c.created) for c in cache_list], np.int64)
        out["cache.expires"] = np.array([_micros(c.expires) for c in cache_list], np.int64)
        out["cache.last_matched"] = np.array([_micros(c.last_matched) for c in cache_list],
                                             np.int64)
        out["cache.auto_created"] = np.array([c.auto_created for c in cache_list], np.uint8)
        out["cache.retention_days"] = np.array([c.retention_days or 0 for c in cache_list],
                                               np.int32)
        out["cache.image"] = np.array(cache_img, dtype=np.uint32)
        out["cache.image_off"] = np.array(cache_img_off, dtype=np.int64)
        strings("core.platforms", platforms)
        out["core.row"] = np.array(
            [row_of[o if isinstance(o, str) else o.id] for o in core_objs], dtype=np.uint32
        )
        for name, array in core_arrays.items():
            out[f"core.{name}"] = array
        return out

    @staticmethod
    def write(path: str | os.PathLike[str] | io.BytesIO, arrays: dict[str, Any]) -> None:
        """Write the arrays to ``path`` atomically (a temporary file, then a rename)."""
        if isinstance(path, io.BytesIO):
            np.savez(path, **arrays)
            return
        target = os.fspath(path)
        if os.path.isdir(target):
            raise OutputFileError(f"{target}: is a directory; give the snapshot a file name")
        folder = os.path.dirname(target) or "."
        if not os.path.isdir(folder):
            raise OutputFileError(f"{target}: no folder {folder} to write the snapshot in")
        tmp = f"{target}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, target)
        except OSError as exc:
            why = exc.strerror or exc
            raise OutputFileError(f"{target}: cannot write the snapshot ({why})") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @staticmethod
    def read(path: str | os.PathLike[str] | io.BytesIO) -> Snapshot:
        """Read a snapshot; a file that is not one raises :class:`InputFileError`."""
        where = "snapshot" if isinstance(path, io.BytesIO) else os.fspath(path)
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                kind = "one NumPy array (.npy)" if isinstance(loaded, np.ndarray) else "no archive"
                raise InputFileError(
                    f"{where}: not a fastmatch index snapshot (it holds {kind}, "
                    "not the arrays CacheIndex.save writes)"
                )
            with loaded as data:
                arrays = {name: data[name] for name in data.files}
        except InputFileError:
            raise
        except FileNotFoundError:
            raise InputFileError(f"{where}: no such file") from None
        except IsADirectoryError:
            raise InputFileError(f"{where}: is a directory, not a snapshot file") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputFileError(f"{where}: not a fastmatch index snapshot ({exc})") from None
        return Snapshot(arrays, where)


def _from_micros(micros: int) -> datetime | None:
    return None if micros == _NONE else EPOCH + timedelta(microseconds=micros)


class CacheTable:
    """The caches of an index by id: model objects, or rows of the snapshot the index was
    loaded from, built into objects when first asked for.

    The core holds, for each ``Ready`` cache, either the cache itself or (after a
    load) its snapshot row: :meth:`resolve` turns either into the cache.
    """

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self._snapshot = snapshot
        self._values: dict[str, ImageCache | int] = (
            {} if snapshot is None else dict(zip(snapshot.ids, range(len(snapshot.ids))))
        )
        self._built: dict[int, ImageCache] = {}

    def resolve(self, value: ImageCache | int) -> ImageCache:
        """The cache for a value the core holds: the cache, or its snapshot row."""
        if type(value) is ImageCache:
            return value
        assert isinstance(value, int) and self._snapshot is not None
        cache = self._built.get(value)
        if cache is None:
            cache = self._built.setdefault(value, self._snapshot.cache(value))
        return cache

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, cache_id: object) -> bool:
        return cache_id in self._values

    def get(self, cache_id: str) -> ImageCache | None:
        """The cache with this id, or ``None``."""
        value = self._values.get(cache_id)
        return None if value is None else self.resolve(value)

    def phase(self, cache_id: str) -> Phase | None:
        """The phase of the cache with this id (without building it), or ``None``."""
        value = self._values.get(cache_id)
        if value is None:
            return None
        if isinstance(value, ImageCache):
            return value.phase
        assert self._snapshot is not None
        return self._snapshot.phase_of(value)

    def put(self, cache: ImageCache) -> None:
        """Add ``cache``, or replace the one with its id."""
        self._values[cache.id] = cache

    def put_all(self, caches: Mapping[str, ImageCache]) -> None:
        """:meth:`put` every cache of ``caches`` (by id), in its order."""
        self._values.update(caches)

    def pop(self, cache_id: str) -> ImageCache | None:
        """Remove the cache with this id and return it, or ``None``."""
        value = self._values.pop(cache_id, None)
        return None if value is None else self.resolve(value)

    def caches(self) -> list[ImageCache]:
        """Every cache, in the order they were added."""
        return [self.resolve(v) for v in list(self._values.values())]

    def loaded(self, phases: Iterable[Phase]) -> list[ImageCache]:
        """The caches read from the snapshot that the index tracks beside its core: those
        in ``phases`` and those listing an image by reference (built now; they are few)."""
        snap = self._snapshot
        if snap is None:
            return []
        rows = set(snap.rows_by_reference())
        rows.update(snap.rows_in(phases))
        return [self.resolve(r) for r in sorted(rows)]
