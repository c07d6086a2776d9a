# What the compiled core exports (_core.pyx and its .pxi parts), kept by hand
# as pandas keeps its _libs stubs: beside each argument, the C type it is
# converted to (``object`` when it stays a Python object).  make lint checks
# it against the built module with mypy.stubtest.
from collections.abc import Iterable
from typing import Any, Final, final

import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = ["NEVER", "Core", "replicas"]

NEVER: Final[int]  # int64_t INT64_MAX: the expiry of a cache that never expires

@disjoint_base  # an extension type: it has a C layout of its own
class _Batch:
    """Pods encoded for the kernels: flat arrays plus per-pod offsets."""

    def __len__(self) -> int: ...

# One pod's score: (best caches' objects, full, covered, distance).
_Scored = tuple[list[Any], int, int, int]

@final  # cython.final (so an extension type no class derives from)
class Core:
    """Caches as slots of sorted layer ids, an inverted index, and the scoring kernels."""

    def __len__(self) -> int: ...
    @property
    def pairs(self) -> int: ...  # int64_t
    @property
    def strategy(self) -> str: ...  # "auto", "probe" or "count"
    @strategy.setter
    def strategy(self, value: str) -> None: ...  # str
    def nbytes(self) -> int: ...  # size_t
    def replace(
        self,
        slot: int,  # int64_t, -1 for none
        obj: Any,  # object
        keys: Iterable[str],  # object
        images: Iterable[Iterable[str]],  # object: each a {key: size} dict or keys
        nbytes: int,  # int64_t
        created: int,  # int64_t, microseconds
        expires: int,  # int64_t, microseconds or NEVER
        size_gib: int,  # int32_t
        arch: str | None = None,  # object
        os: str | None = None,  # object
    ) -> int: ...  # uint32_t, the new slot
    def apply(
        self,
        ops: list[tuple[int, Any, tuple[Any, ...] | None]],  # (slot or -1, obj, row or None)
    ) -> list[int]: ...  # the new slot of each op, -1 for a remove
    def build(
        self,
        objs: list[Any],  # list
        keys: list[Iterable[str]],  # list
        images: list[Iterable[Iterable[str]]],  # list
        nbytes: list[int],  # list of int64_t
        created: list[int],  # list of int64_t
        expires: list[int],  # list of int64_t
        size_gib: list[int],  # list of int32_t
        arch: list[str | None],  # list
        os: list[str | None],  # list
    ) -> None: ...
    def remove(self, slot: int) -> None: ...  # int64_t
    def compact(self) -> None: ...
    def check(self) -> None: ...
    def new_batch(self) -> _Batch: ...
    def encode(
        self,
        batch: _Batch,  # _Batch
        images: list[dict[str, int]],  # list
        bar: int,  # int32_t
        storage: float | None,  # object, to double (-1.0 for None)
        arch: str | None,  # object
        os: str | None,  # object
    ) -> int: ...  # int64_t, the pod's bytes
    def score_batch(
        self,
        batch: _Batch,  # _Batch
        now: int,  # int64_t, microseconds
        threads: int = 1,  # int
    ) -> list[_Scored]: ...
    def score_one(
        self,
        images: list[dict[str, int]],  # list
        bar: int,  # int32_t
        storage: float | None,  # object, to double (-1.0 for None)
        arch: str | None,  # object
        os: str | None,  # object
        now: int,  # int64_t, microseconds
    ) -> tuple[list[Any], int, int, int, int]: ...  # (objs, full, covered, distance, pod_bytes)
    def to_arrays(
        self,
    ) -> tuple[dict[str, npt.NDArray[Any]], list[str], list[str], list[Any]]: ...
    @staticmethod
    def from_arrays(
        arrays: dict[str, npt.NDArray[Any]],  # dict of const uintN/intN_t[::1]
        keys: list[str],  # list
        platforms: list[str],  # list
        objs: list[Any],  # list
    ) -> Core: ...

def replicas(
    pods: list[list[Any]],  # list of lists
    policies: list[Any],  # list
) -> tuple[list[int], list[int]]: ...  # (owner, firsts)
