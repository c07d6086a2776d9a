"""Set-up shared by the white-box tests of the compiled core: layer keys, cores from plain specs.

A cache spec is ``(name, images)``: its object (the name) and the images it
lists, each a ``{key: size}`` dict.  Every cache is made at time 0, never
expires, is 20 GiB and has no platform, so that only layers decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from fastmatch import _core

CacheSpec = tuple[str, Sequence[Mapping[str, int]]]


def layer_key(i: int) -> str:
    """The key of layer number ``i``: a digest-shaped string."""
    return f"sha256:{i:064x}"


def add_cache(core: _core.Core, name: str, images: Sequence[Mapping[str, int]]) -> int:
    """Add one cache to ``core`` as the index would; return its slot."""
    sizes = {k: v for image in images for k, v in image.items()}
    return core.replace(-1, name, [], [dict(image) for image in images],
                        sum(sizes.values()), 0, _core.NEVER, 20)


@pytest.fixture
def key() -> Callable[[int], str]:
    """:func:`layer_key`."""
    return layer_key


@pytest.fixture
def make_core() -> Callable[[Sequence[CacheSpec]], _core.Core]:
    """A function building a core from cache specs, slot ``i`` for spec ``i``."""

    def make(caches: Sequence[CacheSpec]) -> _core.Core:
        core = _core.Core()
        for name, images in caches:
            add_cache(core, name, images)
        core.check()
        return core

    return make
