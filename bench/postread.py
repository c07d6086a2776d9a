"""Build and use the posting-read reference point (``bench/_postread.pyx``).

The helper is compiled on first use with Cython and the C compiler that built
fastmatch, into a cache directory keyed by the source's hash (so a second run
only imports it), and loaded from there: it is part of the benchmark, not of
the package.

:func:`reader_for` turns a :class:`fastmatch.CacheIndex` into the same CSR
inverted index the core keeps (layer id to the slots holding it) and
:func:`pod_layers` a pod into the layer ids it touches.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import fastmatch as fm
from fastmatch.snapshot import unpack_strings

__all__ = ["build", "pod_layers", "reader_for"]

_SOURCE = Path(__file__).with_name("_postread.pyx")


def build() -> ModuleType:
    """Compile (once) and import the posting-read helper."""
    digest = hashlib.sha256(_SOURCE.read_bytes()).hexdigest()[:16]
    root = Path(
        os.environ.get("FASTMATCH_BENCH_BUILD", Path(tempfile.gettempdir()) / "fastmatch-bench")
    )
    out = root / f"postread-{digest}-py{sys.version_info[0]}{sys.version_info[1]}"
    built = sorted(out.glob("_postread*.so")) + sorted(out.glob("_postread*.pyd"))
    if not built:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension

        out.mkdir(parents=True, exist_ok=True)
        src = out / _SOURCE.name
        src.write_bytes(_SOURCE.read_bytes())
        ext = Extension("_postread", [str(src)], extra_compile_args=["-O3"])
        dist = Distribution({"ext_modules": cythonize([ext], quiet=True, build_dir=str(out))})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = str(out)  # type: ignore[attr-defined]
        cmd.build_temp = str(out / "tmp")  # type: ignore[attr-defined]
        cmd.ensure_finalized()
        cmd.run()
        built = sorted(out.glob("_postread*.so")) + sorted(out.glob("_postread*.pyd"))
    spec = importlib.util.spec_from_file_location("_postread", built[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reader_for(index: fm.CacheIndex) -> tuple[Any, dict[str, int]]:
    """A ``PostingReader`` over ``index``'s caches and its key-to-layer-id table."""
    # The core's rows as a snapshot stores them (the public way to read them).
    buffer = io.BytesIO()
    index.save(buffer)
    buffer.seek(0)
    with np.load(buffer) as saved:
        keys = unpack_strings(saved["keys.lens"], saved["keys.data"])
        lens = saved["core.lens"].astype(np.int64)
        layer_ids = saved["core.layer_ids"].astype(np.int64)
    slots = np.repeat(np.arange(len(lens), dtype=np.uint32), lens)
    order = np.argsort(layer_ids, kind="stable")
    post = np.ascontiguousarray(slots[order])
    off = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(np.bincount(layer_ids, minlength=len(keys)), out=off[1:])
    return build().PostingReader(post, off), {k: i for i, k in enumerate(keys)}


def pod_layers(pod: list[fm.Image], ids: dict[str, int]) -> np.ndarray:
    """The distinct layer ids a pod touches (layers no cache holds are not in the index)."""
    keys = {k for image in pod for k in image.layer_sizes()}
    return np.asarray(sorted(ids[k] for k in keys if k in ids), dtype=np.uint32)
